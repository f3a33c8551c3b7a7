"""Requirements of a GPU host (one Check each), each with the exact fix."""

from __future__ import annotations

from pytest_mlperf.checks import FAIL, OK, Check, ok_if
from pytest_mlperf.host.probe import HostRecord

FIX_DRIVER = "install the NVIDIA driver (see --mlperf-provision=plan) and check `nvidia-smi`"
FIX_DOCKER = "install docker.io and start it (systemctl enable --now docker), or set DOCKER_HOST"
FIX_RUNTIME = (
    "install nvidia-container-toolkit, run `nvidia-ctk runtime configure --runtime=docker` "
    "and restart docker"
)


def driver_branch(version: str | None) -> str | None:
    """``550.127.05`` → ``550``."""
    return version.split(".", 1)[0] if version else None


def check_host(record: HostRecord, want_gpus: bool = True) -> list[Check]:
    """Every requirement of NVIDIA's harness that can be checked before a run."""
    reqs: list[Check] = []
    if want_gpus:
        reqs.append(
            Check(
                "gpus",
                f"{len(record.gpus)} GPU(s): {', '.join(record.gpu_names) or 'none'}"
                + (f" (via {record.gpu_source})" if record.gpu_source else ""),
                status=ok_if(bool(record.gpus)),
                fix="" if record.gpus else FIX_DRIVER,
            )
        )
        reqs.append(_fabric_manager(record))
    reqs.append(
        Check(
            "docker",
            f"Docker {record.docker_version}"
            if record.docker_reachable
            else "no Docker engine reachable",
            status=ok_if(bool(record.docker_reachable)),
            fix="" if record.docker_reachable else FIX_DOCKER,
        )
    )
    if want_gpus:
        has_runtime = "nvidia" in record.docker_runtimes
        reqs.append(
            Check(
                "nvidia-container-runtime",
                f"runtimes: {', '.join(record.docker_runtimes) or 'none'}",
                status=ok_if(has_runtime),
                fix="" if has_runtime else FIX_RUNTIME,
            )
        )
    return reqs


def _fabric_manager(record: HostRecord) -> Check:
    driver, fm = record.driver_version, record.fabric_manager_version
    branch = driver_branch(driver) or "<branch>"
    if not record.needs_fabric_manager:
        return Check("fabric-manager", f"not needed: {record.fabric_manager_reason}", status=OK)
    package = f"cuda-drivers-fabricmanager-{branch}={driver}-1"
    if fm is None:
        return Check(
            "fabric-manager",
            f"not installed, but this NVSwitch system needs it ({record.fabric_manager_reason})",
            status=FAIL,
            fix=f"install {package} and start nvidia-fabricmanager",
        )
    if fm != driver:
        return Check(
            "fabric-manager",
            f"fabric manager {fm} ≠ driver {driver}",
            status=FAIL,
            fix=f"install {package} and restart nvidia-fabricmanager",
        )
    if record.fabric_manager_active is False:
        return Check(
            "fabric-manager",
            f"fabric manager {fm} installed but not running",
            status=FAIL,
            fix="systemctl enable --now nvidia-fabricmanager",
        )
    return Check("fabric-manager", f"fabric manager {fm} = driver {driver}", status=OK)


def failed(reqs: list[Check]) -> list[Check]:
    """The requirements that are not met."""
    return [r for r in reqs if not r.ok]


def describe_failures(reqs: list[Check]) -> str:
    """One line per failed requirement: what was found and the fix."""
    return "; ".join(f"{r.name}: {r.value} — fix: {r.fix}" for r in failed(reqs))
