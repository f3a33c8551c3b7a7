"""Preflight doctor: will a run work on this host? One table, each line a verdict and the fix.

Runs in seconds and builds, downloads and starts nothing: it reuses the host probe
(:func:`~pytest_mlperf.host.probe.probe_host`, with injectable command runner, NVML loader
and Docker client), the host checks (:mod:`pytest_mlperf.host.checks`), the known-system
data (``benchmarks/systems``) and ``benchmarks/preflight/<round>.json`` (GPU architectures
and disk sizes per benchmark, validated by ``schemas/preflight.schema.json``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlperf._paths import data_dir
from pytest_mlperf.backends import auto_backend
from pytest_mlperf.checks import FAIL, OK, STATUS_WORDS, WARN, Check
from pytest_mlperf.host.checks import FIX_DOCKER, FIX_DRIVER, FIX_RUNTIME, check_host
from pytest_mlperf.host.commands import Runner, run_command
from pytest_mlperf.host.probe import HostRecord, _load_nvml, probe_host
from pytest_mlperf.redact import redact
from pytest_mlperf.schemas import load_data_file

if TYPE_CHECKING:
    from pytest_mlperf.config import RunConfig

PROXY_KEYS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
_GB = 1e9


@dataclass(frozen=True)
class DoctorInput:
    """What the doctor is asked about: the selected benchmarks and where they would run."""

    families: tuple[str, ...]
    backend: str  # auto, reference, nvidia (or a plugin's)
    harness_dir: Path | None = None
    scratch_path: Path | None = None
    cache_dir: Path | None = None
    round: str = "v4.1"


def load_preflight(round_: str = "v4.1", path: Path | None = None) -> dict[str, Any]:
    """``benchmarks/preflight/<round>.json``, validated."""
    path = path or data_dir("benchmarks") / "preflight" / f"{round_}.json"
    raw: dict[str, Any] = load_data_file(path, "preflight", "preflight data")
    return raw


def gpu_architecture(name: str, data: Mapping[str, Any]) -> tuple[str, str] | None:
    """(architecture, compute capability) of a GPU name, from the data's name patterns."""
    for arch in data["architectures"]:
        if any(re.search(p, name, re.IGNORECASE) for p in arch["gpu_patterns"]):
            return str(arch["name"]), str(arch["compute_capability"])
    return None


class _Info:
    """A Docker client stand-in that answers ``info()`` once fetched (or re-raises)."""

    def __init__(self, factory: Callable[[], Any] | None) -> None:
        self.info_dict: dict[str, Any] | None = None
        self.error: Exception | None = None
        try:
            if factory is None:
                import docker

                client: Any = docker.from_env(timeout=5)
            else:
                client = factory()
            self.info_dict = dict(client.info())
        except Exception as exc:  # noqa: BLE001 - any reason: engine unreachable
            self.error = exc

    def info(self) -> dict[str, Any]:
        if self.info_dict is None:
            raise self.error or RuntimeError("no Docker engine")
        return self.info_dict


def effective_backend(inp: DoctorInput, record: HostRecord) -> tuple[str, str]:
    """The backend a run would use, and why (``auto``'s rule: harness dir + GPUs → nvidia)."""
    if inp.backend != "auto":
        return inp.backend, f"--mlperf-backend={inp.backend}"
    name, why = auto_backend(inp.harness_dir, lambda: bool(record.gpus))
    return name, f"auto: {why}"


def diagnose(
    inp: DoctorInput,
    record: HostRecord,
    docker_info: Mapping[str, Any] | None,
    data: Mapping[str, Any],
    env: Mapping[str, str],
    disk_free: Callable[[Path], int | None],
) -> list[Check]:
    """Every check, from probed facts only (tests pass captured ones)."""
    backend, why = effective_backend(inp, record)
    gpu_run = backend == "nvidia"
    # A GPU-harness requirement fails the doctor only when the run would use the harness.
    miss = FAIL if gpu_run else WARN
    lines = [
        Check(
            "backend",
            f"{backend} ({why}); benchmarks: {', '.join(inp.families)}",
            status=OK,
            fix=""
            if gpu_run or backend != "reference"
            else "for NVIDIA's harness: --mlperf-backend=nvidia --mlperf-harness-dir=DIR",
        )
    ]
    reqs = {r.name: r for r in check_host(record, want_gpus=True)}
    lines.append(_gpus(record, reqs["gpus"], gpu_run, miss))
    lines.append(_system(inp, record, miss))
    lines.append(_architecture(inp, record, data, miss))
    lines.append(_disk(inp, backend, data, disk_free))
    docker = reqs["docker"]
    lines.append(
        Check(
            "docker",
            docker.value,
            status=OK if docker.ok else miss,
            fix="" if docker.ok else FIX_DOCKER,
        )
    )
    lines.append(_runtime(record, reqs["nvidia-container-runtime"], miss))
    fm = reqs["fabric-manager"]
    lines.append(Check("fabric-manager", fm.value, status=OK if fm.ok else miss, fix=fm.fix))
    lines.append(_rootless(docker_info, miss))
    lines.append(_proxy(env, docker_info))
    return lines


def _gpus(record: HostRecord, gpus: Check, gpu_run: bool, miss: str) -> Check:
    """The GPUs found, or why none was (the probes' own errors)."""
    if not record.gpus:
        return Check(
            "gpus",
            "no GPU: "
            + (
                "; ".join(e for e in record.errors if e.startswith(("NVML", "nvidia-smi")))
                or gpus.value
            )
            + ("" if gpu_run else " (the reference backend runs on the CPU)"),
            status=miss,
            fix=FIX_DRIVER,
        )
    return Check(
        "gpus",
        f"{gpus.value}; driver {record.driver_version}, CUDA {record.cuda_version}",
        status=OK,
    )


def _runtime(record: HostRecord, runtime: Check, miss: str) -> Check:
    """The NVIDIA container runtime, checked only when a Docker engine answered."""
    if not record.docker_reachable:
        return Check(
            "nvidia-runtime", "not checked: no Docker engine", status=miss, fix=FIX_RUNTIME
        )
    return Check(
        "nvidia-runtime",
        runtime.value,
        status=OK if runtime.ok else miss,
        fix="" if runtime.ok else FIX_RUNTIME,
    )


def _system(inp: DoctorInput, record: HostRecord, miss: str) -> Check:
    """Which systems data matches; whether the harness knows it is the harness's own call.

    v4.1 matches GPUs *and* the host CPU (``code/common/systems/system_list.py``), so only its
    own detection (``python3 -m scripts.get_system_id`` in the container, at session start)
    can answer; the doctor says what follows from either answer.
    """
    from pytest_mlperf.backends.nvidia.custom_system import (
        custom_system_id,
        load_systems,
        match_system,
        system_entry,
    )

    if not record.gpus:
        return Check("system", "no GPU: nothing for the harness to recognise", status=miss)
    desc = f"{len(record.gpus)}x {', '.join(record.gpu_names)}, CPU {record.cpu_model or 'unknown'}"
    spec = match_system(record, load_systems())
    if spec is None:
        return Check(
            "system",
            f"{desc}: in no benchmarks/systems/*.json; fine if the harness knows it (its own "
            "detection decides at session start), otherwise the session stops with 'Detected "
            "system did not match any known systems'",
            status=WARN,
            fix="add benchmarks/systems/<name>.json (schema system: GPU name and count, harness "
            "configs) so an unknown system gets a generated custom system",
        )
    system_entry(spec, record)  # what would be written: fails here, not at run time
    return Check(
        "system",
        f"{desc} = {spec.name}; the harness's own detection decides at session start: known "
        f"-> its configs (missing scenarios generated from {spec.source.name}); unknown -> "
        f"custom system {custom_system_id(spec)} via MLPINF_CUSTOM_DEFINITION_PATH",
        status=OK,
    )


def _architecture(
    inp: DoctorInput, record: HostRecord, data: Mapping[str, Any], miss: str
) -> Check:
    if not record.gpus:
        return Check("gpu-architecture", "no GPU", status=miss)
    bad: list[str] = []
    found: list[str] = []
    for name in record.gpu_names:
        arch = gpu_architecture(name, data)
        label = f"{name}: {arch[0]} (sm {arch[1]})" if arch else f"{name}: unknown architecture"
        found.append(label)
        for family in inp.families:
            if family not in data["benchmarks"]:
                continue  # no preflight data (e.g. a plugin's benchmark): said below
            allowed = data["benchmarks"][family]["architectures"]
            if arch is None or arch[0] not in allowed:
                bad.append(f"{family} needs {'/'.join(allowed) or '?'}")
    if bad:
        return Check(
            "gpu-architecture",
            "; ".join(found) + " — " + "; ".join(sorted(set(bad))),
            status=miss,
            fix="run on a supported GPU, or deselect those benchmarks (--mlperf-benchmarks)",
        )
    known = [f for f in inp.families if f in data["benchmarks"]]
    unknown = [f for f in inp.families if f not in data["benchmarks"]]
    return Check(
        "gpu-architecture",
        "; ".join(found)
        + (f" — supported by {', '.join(known)} (round {data['round']})" if known else "")
        + (f"; no preflight data for {', '.join(unknown)}" if unknown else ""),
        status=OK,
    )


def _disk(
    inp: DoctorInput,
    backend: str,
    data: Mapping[str, Any],
    disk_free: Callable[[Path], int | None],
) -> Check:
    benches = data["benchmarks"]
    if backend == "nvidia":
        if inp.scratch_path is None:
            return Check(
                "disk",
                "no scratch path",
                status=FAIL,
                fix="set --mlperf-scratch-path=DIR (data, models, engines)",
            )
        where = inp.scratch_path
        need = 0.0
        parts = []
        for family in inp.families:
            for part in benches.get(family, {}).get("scratch", []):
                if (where / part["path"]).exists():
                    continue  # already downloaded / built
                need += float(part["gb"])
                parts.append(f"{family} {part['what']} {part['gb']:g}")
    else:
        where = inp.cache_dir or Path.cwd()
        need = sum(float(benches.get(f, {}).get("reference_cache_gb", 0)) for f in inp.families)
        parts = [f"reference models {need:g}"]
    free = disk_free(where)
    if free is None:
        return Check("disk", f"cannot read free space for {where}", status=WARN, fix="")
    text = (
        f"{free / _GB:.1f} GB free at {where}; needs ~{need:.1f} GB "
        f"({'; '.join(parts) or 'all present'}; estimates, {data['round']})"
    )
    if free < need * _GB:
        return Check(
            "disk",
            text,
            status=FAIL,
            fix=f"free {need - free / _GB:.1f} GB there, or point "
            + ("--mlperf-scratch-path" if backend == "nvidia" else "--mlperf-cache-dir")
            + " at a larger disk",
        )
    return Check("disk", text, status=OK)


def _rootless(info: Mapping[str, Any] | None, miss: str) -> Check:
    if info is None:
        return Check("rootless-docker", "not checked: no Docker engine", status=OK)
    options = [str(o) for o in info.get("SecurityOptions") or []]
    if any("rootless" in o for o in options):
        return Check(
            "rootless-docker",
            "Docker runs rootless: the NVIDIA runtime cannot set up device cgroups",
            status=miss,
            fix="nvidia-ctk config --set nvidia-container-cli.no-cgroups --in-place (as root), "
            "or use the rootful engine (DOCKER_HOST=unix:///var/run/docker.sock)",
        )
    return Check("rootless-docker", "rootful engine", status=OK)


def _proxy(env: Mapping[str, str], info: Mapping[str, Any] | None) -> Check:
    shell = {
        k: env.get(k) or env.get(k.lower()) for k in PROXY_KEYS if env.get(k) or env.get(k.lower())
    }
    engine: dict[str, str] = {}
    if info is not None:
        for key, name in (("HttpProxy", "HTTP_PROXY"), ("HttpsProxy", "HTTPS_PROXY")):
            if info.get(key):
                engine[name] = str(info[key])
    shown = ", ".join(f"{k}={redact(v or '')}" for k, v in sorted(shell.items())) or "none"
    web = {k: v for k, v in shell.items() if k != "NO_PROXY"}
    if not web and not engine:
        return Check("proxy", "no proxy set (direct network access)", status=OK)
    if web and info is None:
        return Check("proxy", f"shell: {shown}; engine not checked", status=OK)
    if web and not engine:
        return Check(
            "proxy",
            f"shell: {shown}; Docker engine: none — image builds and pulls run in the engine "
            "and would bypass the proxy",
            status=WARN,
            fix="systemd drop-in /etc/systemd/system/docker.service.d/http-proxy.conf with "
            "Environment=HTTP_PROXY=... HTTPS_PROXY=... NO_PROXY=..., then systemctl "
            "daemon-reload && systemctl restart docker",
        )
    if engine and not web:
        return Check(
            "proxy",
            f"Docker engine: {', '.join(f'{k}={redact(v)}' for k, v in engine.items())}; "
            "shell: none — downloads inside the container get no proxy",
            status=WARN,
            fix='export HTTP_PROXY/HTTPS_PROXY, or set "proxies" in ~/.docker/config.json',
        )
    return Check("proxy", f"shell: {shown}; Docker engine has a proxy too", status=OK)


def _disk_free(path: Path) -> int | None:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def run_doctor(
    inp: DoctorInput,
    runner: Runner = run_command,
    nvml_loader: Callable[[], Any] = _load_nvml,
    docker_client: Callable[[], Any] | None = None,
    env: Mapping[str, str] | None = None,
    disk_free: Callable[[Path], int | None] = _disk_free,
    data: Mapping[str, Any] | None = None,
) -> list[Check]:
    """Probe this host (everything injectable) and diagnose it."""
    data = data or load_preflight(inp.round)
    engine = _Info(docker_client)
    record = probe_host(runner, nvml_loader, docker_client=lambda: engine, want_gpus=True)
    return diagnose(
        inp, record, engine.info_dict, data, os.environ if env is None else env, disk_free
    )


def doctor_table(lines: Sequence[Check]) -> list[str]:
    """The table as printed, with a closing summary line."""
    from pytest_mlperf.report.terminal import text_table

    rows = [[d.name, STATUS_WORDS[d.status], d.value, d.fix] for d in lines]
    out = ["pytest-mlperf doctor", *text_table(("check", "verdict", "found", "fix"), rows)]
    fails = [d.name for d in lines if d.status == FAIL]
    warns = [d.name for d in lines if d.status == WARN]
    out.append(
        f"doctor: {len(fails)} failed ({', '.join(fails) or '-'}), "
        f"{len(warns)} warning(s) ({', '.join(warns) or '-'})"
    )
    return out


def exit_code(lines: Sequence[Check]) -> int:
    """0 when no check failed, else 1."""
    return 1 if any(d.status == FAIL for d in lines) else 0


def doctor_input(run_config: RunConfig) -> DoctorInput:
    """What to ask the doctor for the parsed options (benchmark families in option order)."""
    families = tuple(dict.fromkeys(v.family for v in run_config.variants))
    return DoctorInput(
        families,
        run_config.backend,
        run_config.harness_dir,
        run_config.scratch_path,
        run_config.cache_dir,
    )
