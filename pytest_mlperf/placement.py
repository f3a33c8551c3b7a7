"""Where an xdist worker runs: its share of GPUs, MIG slices or CPUs, and its Docker host."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_mlperf.errors import BackendError

SPLITS = ("none", "cpu", "gpu", "mig")
T = TypeVar("T")
_GPU_LINE = re.compile(r"^GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*(GPU-[^)]+)\)")
_MIG_LINE = re.compile(r"^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*(MIG-[^)]+)\)")


@dataclass(frozen=True)
class Placement:
    """This process's slot: xdist worker id, its index among ``count`` workers, its host."""

    worker: str = "main"
    index: int = 0
    count: int = 1
    split: str = "none"
    docker_host: str | None = None

    @classmethod
    def from_workerinput(
        cls, workerinput: dict[str, Any] | None, split: str, docker_hosts: Sequence[str]
    ) -> Placement:
        """From pytest-xdist's ``workerinput`` (None outside xdist)."""
        worker, index, count = "main", 0, 1
        if workerinput:
            worker = str(workerinput.get("workerid", "gw0"))
            index = int(worker[2:]) if worker[2:].isdigit() else 0
            count = int(workerinput.get("workercount", 1))
        host = docker_hosts[index % len(docker_hosts)] if docker_hosts else None
        return cls(worker, index, count, split, host)

    @property
    def host_key(self) -> str:
        """Short id of the Docker host (``local`` for the default engine)."""
        if not self.docker_host:
            return "local"
        return hashlib.sha256(self.docker_host.encode()).hexdigest()[:8]

    def share(self, things: Sequence[T], what: str) -> list[T]:
        """This worker's share: every ``count``-th thing from ``index`` (all when not split)."""
        if self.split == "none":
            return list(things)
        mine = list(things[self.index :: self.count])
        if not mine:
            raise BackendError(
                f"worker {self.worker} gets no {what}: {self.count} workers share {len(things)} "
                f"{what} ({', '.join(map(str, things)) or 'none'}); use fewer workers (-n)"
            )
        return mine


def cpu_set(placement: Placement) -> list[int] | None:
    """This worker's CPUs under ``--mlperf-split`` (reference backend), or None."""
    if placement.split == "none":
        return None
    return placement.share(sorted(os.sched_getaffinity(0)), "CPUs")


def parse_smi_list(text: str) -> list[dict[str, Any]]:
    """``nvidia-smi -L``: GPUs with their MIG devices (profile and UUID)."""
    gpus: list[dict[str, Any]] = []
    for line in text.splitlines():
        gpu = _GPU_LINE.match(line)
        if gpu:
            gpus.append(
                {"index": int(gpu.group(1)), "name": gpu.group(2), "uuid": gpu.group(3), "mig": []}
            )
            continue
        mig = _MIG_LINE.match(line)
        if mig and gpus:
            gpus[-1]["mig"].append(
                {"profile": mig.group(1), "device": int(mig.group(2)), "uuid": mig.group(3)}
            )
    return gpus


def mig_uuids(text: str) -> list[str]:
    """Every MIG device UUID in ``nvidia-smi -L`` output, in GPU then device order."""
    return [m["uuid"] for g in parse_smi_list(text) for m in g["mig"]]
