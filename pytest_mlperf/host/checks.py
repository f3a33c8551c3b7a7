"""Requirements of a GPU host (one Check each), each with the exact fix."""

from __future__ import annotations

from pytest_mlperf.checks import Check, requirement
from pytest_mlperf.host.probe import HostRecord

FIX_DRIVER = "install the NVIDIA driver (see --mlperf-provision=plan) and check `nvidia-smi`"
FIX_DOCKER = "install docker.io and start it (systemctl enable --now docker), or set DOCKER_HOST"
FIX_RUNTIME = (
    "install nvidia-container-toolkit, run `nvidia-ctk runtime configure --runtime=docker` "
    "and restart docker"
)


#: A host requirement is a :class:`~pytest_mlperf.checks.Check` (``ok``, ``found``, ``fix``).
Requirement = Check


def driver_branch(version: str | None) -> str | None:
    """``550.127.05`` → ``550``."""
    return version.split(".", 1)[0] if version else None


def check_host(record: HostRecord, want_gpus: bool = True) -> list[Requirement]:
    """Every requirement of NVIDIA's harness that can be checked before a run."""
    reqs: list[Requirement] = []
    if want_gpus:
        reqs.append(
            requirement(
                "gpus",
                bool(record.gpus),
                f"{len(record.gpus)} GPU(s): {', '.join(record.gpu_names) or 'none'}"
                + (f" (via {record.gpu_source})" if record.gpu_source else ""),
                "" if record.gpus else FIX_DRIVER,
            )
        )
        reqs.append(_fabric_manager(record))
    reqs.append(
        requirement(
            "docker",
            bool(record.docker_reachable),
            f"Docker {record.docker_version}"
            if record.docker_reachable
            else "no Docker engine reachable",
            "" if record.docker_reachable else FIX_DOCKER,
        )
    )
    if want_gpus:
        has_runtime = "nvidia" in record.docker_runtimes
        reqs.append(
            requirement(
                "nvidia-container-runtime",
                has_runtime,
                f"runtimes: {', '.join(record.docker_runtimes) or 'none'}",
                "" if has_runtime else FIX_RUNTIME,
            )
        )
    return reqs


def _fabric_manager(record: HostRecord) -> Requirement:
    driver, fm = record.driver_version, record.fabric_manager_version
    branch = driver_branch(driver) or "<branch>"
    if not record.needs_fabric_manager:
        return requirement("fabric-manager", True, f"not needed: {record.fabric_manager_reason}")
    package = f"cuda-drivers-fabricmanager-{branch}={driver}-1"
    if fm is None:
        return requirement(
            "fabric-manager",
            False,
            f"not installed, but this NVSwitch system needs it ({record.fabric_manager_reason})",
            f"install {package} and start nvidia-fabricmanager",
        )
    if fm != driver:
        return requirement(
            "fabric-manager",
            False,
            f"fabric manager {fm} ≠ driver {driver}",
            f"install {package} and restart nvidia-fabricmanager",
        )
    if record.fabric_manager_active is False:
        return requirement(
            "fabric-manager",
            False,
            f"fabric manager {fm} installed but not running",
            "systemctl enable --now nvidia-fabricmanager",
        )
    return requirement("fabric-manager", True, f"fabric manager {fm} = driver {driver}")


def failed(reqs: list[Requirement]) -> list[Requirement]:
    """The requirements that are not met."""
    return [r for r in reqs if not r.ok]


def describe_failures(reqs: list[Requirement]) -> str:
    """One line per failed requirement: what was found and the fix."""
    return "; ".join(f"{r.name}: {r.found} — fix: {r.fix}" for r in failed(reqs))
