"""Teach the harness a system it does not know, from ``benchmarks/systems/*.json``.

The harness's own files are never touched: the generated ``custom_list.py`` and
``configs/<benchmark>/<Scenario>/custom.py`` are copies (original + our block) written to
an overlay directory and bind-mounted read-only over the originals in the container.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlperf._paths import data_dir
from pytest_mlperf.host.probe import HostRecord
from pytest_mlperf.results.store import atomic_write_text
from pytest_mlperf.schemas import load_data_file

CUSTOM_LIST = Path("code/common/systems/custom_list.py")
BEGIN = "# >>> pytest-mlperf generated block: do not edit by hand >>>"
END = "# <<< pytest-mlperf generated block <<<"
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


def harness_knows(harness_dir: Path, system_id: str) -> bool:
    """Whether the harness's system lists already name ``system_id``."""
    for rel in ("code/common/systems/system_list.py", str(CUSTOM_LIST)):
        path = harness_dir / rel
        if path.is_file() and system_id in path.read_text(encoding="utf-8", errors="replace"):
            return True
    return False


def _with_block(original: str, block: str) -> str:
    if BEGIN in original:
        head = original.split(BEGIN, 1)[0]
        rest = original.split(END, 1)[1] if END in original else ""
        original = head.rstrip("\n") + "\n" + rest.lstrip("\n")
    return original.rstrip("\n") + f"\n\n{BEGIN}\n{block.rstrip()}\n{END}\n"


def system_entry(spec: SystemSpec, record: HostRecord) -> str:
    """A ``custom_systems[...]`` entry matching the probed host."""
    cpu = record.cpu_model or "unknown CPU"
    memory_gb = round((record.memory_kib or 0) * 1024 / 1e9, 2)
    return (
        f"custom_systems[{spec.system_id!r}] = SystemConfiguration("
        f"host_cpu_conf=CPUConfiguration(layout={{CPU(name={cpu!r}, "
        f"architecture=CPUArchitecture.x86_64, core_count={record.cpu_cores_per_socket or 1}, "
        f"threads_per_core={record.cpu_threads_per_core or 1}): {record.cpu_sockets or 1}}}), "
        f"host_mem_conf=MemoryConfiguration(host_memory_capacity=Memory(quantity={memory_gb}, "
        f"byte_suffix=ByteSuffix.GB), comparison_tolerance=0.05), "
        f"accelerator_conf=AcceleratorConfiguration(layout={{KnownGPU.{spec.known_gpu}.value: "
        f"{spec.gpu_count}}}), numa_conf=None, system_id={spec.system_id!r})"
    )


def config_block(spec: SystemSpec, benchmark: str, scenario: str, values: dict[str, Any]) -> str:
    """The harness config classes for one benchmark×scenario, 99 % and 99.9 %."""
    name = f"{spec.system_id}_PytestMlperf"
    lines = [
        "@ConfigRegistry.register(HarnessType.Custom, AccuracyTarget.k_99, PowerSetting.MaxP)",
        f"class {name}({_BASE_CLASS[scenario]}):",
        f"    system = KnownSystem.{spec.system_id}",
        f"    gpu_batch_size = {{{benchmark!r}: {int(values['gpu_batch_size'])}}}",
    ]
    lines += [f"    {k} = {v!r}" for k, v in sorted(values.items()) if k != "gpu_batch_size"]
    lines += [
        "",
        "",
        "@ConfigRegistry.register(HarnessType.Custom, AccuracyTarget.k_99_9, PowerSetting.MaxP)",
        f"class {name}_HighAccuracy({name}):",
        '    precision = "fp16"' if benchmark == "bert" else "    pass",
    ]
    return "\n".join(lines)


def write_overlay(
    harness_dir: Path, overlay_dir: Path, spec: SystemSpec, record: HostRecord
) -> dict[str, str]:
    """Write the copies; returns host file → path inside the container (``/work/...``)."""
    mounts: dict[str, str] = {}

    def emit(rel: Path, default_header: str, block: str) -> None:
        original_path = harness_dir / rel
        original = (
            original_path.read_text(encoding="utf-8") if original_path.is_file() else default_header
        )
        target = overlay_dir / rel
        # harness code mounted into the container, not a report: written as generated
        atomic_write_text(target, _with_block(original, block), mask_secrets=False)
        mounts[str(target)] = f"/work/{rel.as_posix()}"

    emit(CUSTOM_LIST, "custom_systems = dict()\n", system_entry(spec, record))
    for benchmark, scenarios in sorted(spec.configs.items()):
        for scenario, values in sorted(scenarios.items()):
            emit(
                Path("configs") / benchmark / scenario / "custom.py",
                "from . import *\n",
                config_block(spec, benchmark, scenario, values),
            )
    return mounts
