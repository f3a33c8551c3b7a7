"""Opt-in provisioning: a plan of exact commands, applied idempotently as argument lists."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlperf._paths import data_dir
from pytest_mlperf.errors import BackendError
from pytest_mlperf.host.checks import driver_branch
from pytest_mlperf.host.commands import Runner
from pytest_mlperf.host.probe import HostRecord
from pytest_mlperf.schemas import load_data_file


@dataclass(frozen=True)
class Step:
    """One provisioning command and whether the host already has what it gives."""

    name: str
    argv: tuple[str, ...]
    done: bool
    why: str

    def render(self) -> str:
        """The command as a person would type it (for the plan printout only)."""
        return " ".join(
            a if a and all(c.isalnum() or c in "-_=./:," for c in a) else repr(a) for a in self.argv
        )


def load_host_requirements(round_: str = "v4.1") -> dict[str, Any]:
    """The driver/CUDA/container targets of an MLPerf round (``benchmarks/hosts/<round>.json``)."""
    path = data_dir("benchmarks") / "hosts" / f"{round_}.json"
    raw: dict[str, Any] = load_data_file(path, "host", "host requirements")
    return raw


def plan_provisioning(
    record: HostRecord,
    target: dict[str, Any],
    held: set[str],
    has_cuda: bool,
    cuda_runfile: Path | None,
) -> list[Step]:
    """Every step, in order, each marked done when the probe shows it is not needed."""
    branch = driver_branch(record.driver_version) or str(target["driver_branch"])
    driver_pkgs = (f"nvidia-driver-{branch}-server", f"nvidia-dkms-{branch}-server")
    fm_pkg = f"cuda-drivers-fabricmanager-{branch}"
    steps = [
        Step(
            "driver",
            ("apt-get", "install", "-y", *driver_pkgs),
            record.driver_version is not None,
            f"driver {record.driver_version or 'missing'} (branch {target['driver_branch']} wanted)",
        )
    ]
    steps += _fabric_manager_steps(record, fm_pkg)
    hold = (*driver_pkgs, fm_pkg) if record.needs_fabric_manager else driver_pkgs
    steps.append(
        Step(
            "hold-driver-packages",
            ("apt-mark", "hold", *hold),
            set(hold) <= held,
            f"held: {', '.join(sorted(held & set(hold))) or 'none'} (an upgrade must not split driver and fabric manager)",
        )
    )
    runfile = str(cuda_runfile) if cuda_runfile else str(target["cuda_runfile"])
    steps.append(
        Step(
            "cuda-toolkit",
            ("sh", runfile, "--silent", "--toolkit"),
            has_cuda,
            f"CUDA {target['cuda_version']} toolkit {'present' if has_cuda else 'missing'}",
        )
    )
    steps += _container_steps(record)
    return steps


def _fabric_manager_steps(record: HostRecord, fm_pkg: str) -> list[Step]:
    """The fabric manager and its service, or (not needed) one done step saying why."""
    if not record.needs_fabric_manager:
        # nothing to run: the plan still says why (e.g. "no NVSwitch on the PCI bus (lspci)")
        return [Step("fabric-manager", (), True, f"not needed: {record.fabric_manager_reason}")]
    # decided from the hardware (NVSwitch on the PCI bus), so a bare host without a
    # driver gets it too; pinned to the driver installed, so the two can never differ
    version = record.driver_version or "<driver version after the driver step>"
    return [
        Step(
            "fabric-manager",
            ("apt-get", "install", "-y", f"{fm_pkg}={version}-1"),
            record.fabric_manager_matches_driver,
            f"{record.fabric_manager_reason}: fabric manager "
            f"{record.fabric_manager_version or 'missing'}, driver {record.driver_version}",
        ),
        Step(
            "fabric-manager-service",
            ("systemctl", "enable", "--now", "nvidia-fabricmanager"),
            record.fabric_manager_active is True,
            f"service active: {record.fabric_manager_active}",
        ),
    ]


def _container_steps(record: HostRecord) -> list[Step]:
    """Docker, the NVIDIA container toolkit and its runtime registered with Docker."""
    has_runtime = "nvidia" in record.docker_runtimes
    return [
        Step(
            "docker",
            ("apt-get", "install", "-y", "docker.io"),
            bool(record.docker_reachable),
            f"engine reachable: {record.docker_reachable}",
        ),
        Step(
            "container-toolkit",
            ("apt-get", "install", "-y", "nvidia-container-toolkit"),
            has_runtime,
            f"docker runtimes: {', '.join(record.docker_runtimes) or 'none'}",
        ),
        Step(
            "container-runtime",
            ("nvidia-ctk", "runtime", "configure", "--runtime=docker"),
            has_runtime,
            "register the nvidia runtime with Docker",
        ),
        Step(
            "docker-restart",
            ("systemctl", "restart", "docker"),
            has_runtime,
            "load the nvidia runtime",
        ),
    ]


def probe_provisioning_state(runner: Runner, cuda_version: str) -> tuple[set[str], bool]:
    """Held packages (``apt-mark showhold``) and whether the CUDA toolkit is installed."""
    holds = runner(["apt-mark", "showhold"])
    held = set(holds.stdout.split()) if holds.ok else set()
    nvcc = runner([f"/usr/local/cuda-{cuda_version}/bin/nvcc", "--version"])
    return held, nvcc.ok


def apply_plan(steps: list[Step], runner: Runner, progress: Callable[[str], None]) -> float:
    """Run the steps that are not done, in order; stop at the first failure. Returns seconds."""
    start = time.perf_counter()
    for step in steps:
        if step.done:
            continue
        progress(f"provision {step.name}: {step.render()}")
        result = runner(list(step.argv))
        if not result.ok:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
            raise BackendError(
                f"provisioning step {step.name!r} failed (exit {result.returncode}): {step.render()}\n{tail}"
            )
    return time.perf_counter() - start
