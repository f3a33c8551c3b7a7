"""Teach the harness a system or a config it lacks, through its own custom-definition route.

v4.1 reads custom systems and configs from ``$MLPINF_CUSTOM_DEFINITION_PATH``
(``code/common/systems/system_list.py``: ``custom_systems/custom_list.py``;
``configs/configuration.py``: ``custom_configs/<benchmark>/<Scenario>/custom.py``). We write
that directory under the scratch path; the harness checkout is never written or mounted over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlperf._paths import data_dir
from pytest_mlperf.host.probe import HostRecord
from pytest_mlperf.schemas import load_data_file

#: The harness's stub for custom_list.py (its imports are what the entries need).
STUB = Path("scripts/custom_systems/stubs/custom_system.py.stub")
#: Our own copy of what the stub imports, for a checkout without the stub.
STUB_IMPORTS = """from code.common.constants import *
from code.common.systems.base import *
from code.common.systems.accelerator import AcceleratorConfiguration, GPU, MIG
from code.common.systems.cpu import CPUConfiguration, CPU
from code.common.systems.memory import MemoryConfiguration
from code.common.systems.systems import SystemConfiguration
from code.common.systems.known_hardware import *
"""
#: Suffix of a generated system id: no built-in KnownSystem ends with it, so no duplicate.
CUSTOM_SUFFIX = "_PytestMlperf"
#: config_vers a generated config can stand for (HarnessType.Custom); Triton needs its own.
GENERATED_CONFIG_VERS = ("default", "high_accuracy")
_BASE_CLASS = {
    "Offline": "OfflineGPUBaseConfig",
    "Server": "ServerGPUBaseConfig",
    "SingleStream": "SingleStreamGPUBaseConfig",
    "MultiStream": "MultiStreamGPUBaseConfig",
}


@dataclass(frozen=True)
class SystemSpec:
    """A system from our data: how to recognise it and its harness configs."""

    name: str
    system_id: str
    known_gpu: str
    gpu_name: str
    gpu_count: int
    configs: dict[str, dict[str, dict[str, Any]]]
    source: Path


def load_systems(directory: Path | None = None) -> list[SystemSpec]:
    """Every ``benchmarks/systems/*.json``, validated."""
    directory = directory or data_dir("benchmarks") / "systems"
    systems = []
    for path in sorted(directory.glob("*.json")):
        raw = load_data_file(path, "system", "system data")
        systems.append(
            SystemSpec(
                raw["name"],
                raw["system_id"],
                raw["known_gpu"],
                raw["gpu_name"],
                int(raw["gpu_count"]),
                raw["configs"],
                path,
            )
        )
    return systems


def match_system(record: HostRecord, systems: Iterable[SystemSpec]) -> SystemSpec | None:
    """The system whose GPU name and count equal what the probe found."""
    names = record.gpu_names
    if len(names) != 1:
        return None
    for spec in systems:
        if spec.gpu_name == names[0] and spec.gpu_count == len(record.gpus):
            return spec
    return None


def system_entry(spec: SystemSpec, record: HostRecord, system_id: str | None = None) -> str:
    """A ``custom_systems[...]`` entry matching the probed host (its GPUs and its CPU)."""
    system_id = system_id or custom_system_id(spec)
    cpu = record.cpu_model or "unknown CPU"
    # the harness reads /proc/meminfo's "kB" as 1000 bytes (code/common/systems/memory.py,
    # seen: its detected MemTotal equals kB x 1000), so the entry does too
    memory_gb = round((record.memory_kib or 0) * 1000 / 1e9, 2)
    return (
        f"custom_systems[{system_id!r}] = SystemConfiguration("
        f"host_cpu_conf=CPUConfiguration(layout={{CPU(name={cpu!r}, "
        f"architecture=CPUArchitecture.x86_64, core_count={record.cpu_cores_per_socket or 1}, "
        f"threads_per_core={record.cpu_threads_per_core or 1}): {record.cpu_sockets or 1}}}), "
        f"host_mem_conf=MemoryConfiguration(host_memory_capacity=Memory(quantity={memory_gb}, "
        f"byte_suffix=ByteSuffix.GB), comparison_tolerance=0.05), "
        f"accelerator_conf=AcceleratorConfiguration(layout={{KnownGPU.{spec.known_gpu}.value: "
        f"{spec.gpu_count}}}), numa_conf=None, system_id={system_id!r})"
    )


def custom_system_id(spec: SystemSpec) -> str:
    """The id of our custom system for ``spec``'s GPUs: never equal to a built-in one."""
    return spec.system_id + CUSTOM_SUFFIX


def custom_list_text(stub: str | None, entry: str) -> str:
    """``custom_systems/custom_list.py``: the harness's stub (its imports), then our entry."""
    if not stub or "custom_systems = dict()" not in stub:
        stub = STUB_IMPORTS + "\ncustom_systems = dict()\n"
    base = stub
    return base.rstrip("\n") + "\n\n# written by pytest-mlperf\n" + entry + "\n"


#: First line of every custom.py we write: ``configs/configuration.py`` imports only
#: ``custom_configs/<benchmark>/<Scenario>/custom.py`` when MLPINF_CUSTOM_DEFINITION_PATH is
#: set, so the file must import the harness's own configs for the pair itself.
CONFIG_HEADER = "# written by pytest-mlperf"
#: Marks a custom.py that registers configs of ours (not only the harness's own).
GENERATED_MARK = "# pytest-mlperf generated configs:"
#: config_ver -> the AccuracyTarget member it selects (code/common/constants.py
#: config_ver_to_workload_setting: "high_accuracy" in the name means k_99_9)
TARGETS = {"default": "k_99", "high_accuracy": "k_99_9"}


def passthrough_text(benchmark: str, scenario: str) -> str:
    """A custom.py that registers nothing of ours: it imports the harness's own configs.

    ``importlib``, not ``from configs.<b>.<S> import *``: "3d-unet" is no Python identifier,
    so that statement is a SyntaxError (NVIDIA imports it with import_module too).
    """
    module = f"configs.{benchmark}.{scenario}"
    return (
        f"{CONFIG_HEADER}: the harness's own configs for {benchmark} {scenario}\n"
        "import importlib as _importlib\n\n"
        f"_own = _importlib.import_module({module!r})\n"
        "globals().update({k: v for k, v in vars(_own).items() if not k.startswith('_')})\n"
    )


def config_text(
    system_id: str,
    benchmark: str,
    scenario: str,
    values: Mapping[str, Any],
    config_vers: Iterable[str] = GENERATED_CONFIG_VERS,
) -> str:
    """``custom_configs/<benchmark>/<Scenario>/custom.py``: the harness's own configs for the
    pair, plus ours for ``system_id`` and each config_ver it lacks (99 %: default, 99.9 %:
    high_accuracy), built on ``<Scenario>GPUBaseConfig``."""
    wanted = [cv for cv in GENERATED_CONFIG_VERS if cv in set(config_vers)]
    name = f"{system_id}_{scenario}{CUSTOM_SUFFIX}"
    lines = [
        passthrough_text(benchmark, scenario).rstrip("\n"),
        f"{GENERATED_MARK} {', '.join(wanted)}",
    ]
    body = [f"    system = KnownSystem.{system_id}"]
    body.append(f"    gpu_batch_size = {{{benchmark!r}: {int(values['gpu_batch_size'])}}}")
    body += [f"    {k} = {v!r}" for k, v in sorted(values.items()) if k != "gpu_batch_size"]
    for cv in wanted:
        suffix = "" if cv == "default" else "_HighAccuracy"
        lines += [
            "",
            "",
            f"@ConfigRegistry.register(HarnessType.Custom, AccuracyTarget.{TARGETS[cv]}, "
            "PowerSetting.MaxP)",
            f"class {name}{suffix}({_BASE_CLASS[scenario]}):",
            *body,
        ]
        if cv == "high_accuracy" and benchmark == "bert":
            lines.append('    precision = "fp16"')
    return "\n".join(lines) + "\n"


def text_digest(*texts: str) -> str:
    """A short hash of generated definitions (part of an engine's identity)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]
