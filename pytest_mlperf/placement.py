"""Where an xdist worker runs: its share of GPUs, MIG slices or CPUs, and its Docker host."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pytest_mlperf.backends.base import DeviceList, DeviceLocks
from pytest_mlperf.errors import BackendError

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


# -- one measurement per device set, host-wide ---------------------------------------------
#: Environment variable naming the lock directory (default: ``<tmp>/pytest-mlperf-locks``).
LOCK_DIR_ENV = "PYTEST_MLPERF_LOCK_DIR"


def lock_dir() -> Path:
    """Where device locks live: one directory for every session on this host."""
    import tempfile

    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "pytest-mlperf-locks")


def device_keys(backend: object, placement: Placement) -> list[str]:
    """The devices one run of ``backend`` occupies, as lock names.

    The reference backend: each CPU of its set (``cpu-N``), so a split worker and an
    unsplit session on the same host still exclude each other CPU by CPU. GPU backends:
    each device of theirs (``gpu-<id>``), ``gpu-all`` when they use every GPU. Keys carry
    the Docker host, which is another machine when it is remote.
    """
    keys: list[str]
    if isinstance(backend, DeviceLocks):
        keys = [str(k) for k in backend.lock_devices()]
    else:
        devices = backend.devices if isinstance(backend, DeviceList) else None
        if isinstance(devices, (list, tuple)) and devices and "all" not in devices:
            keys = [f"gpu-{d}" for d in devices]
        else:
            keys = ["gpu-all"]
    prefix = "" if placement.host_key == "local" else f"{placement.host_key}-"
    return sorted({prefix + re.sub(r"[^A-Za-z0-9._-]", "_", k) for k in keys})


@dataclass
class DeviceLock:
    """Holds the host-wide locks of a device set for one measurement.

    ``wait_s`` and ``waited_for`` say whether another measurement (this session's other
    worker, or another session) held any of them.
    """

    keys: list[str]
    owner: str
    wait_s: float = 0.0
    waited_for: list[str] | None = None
    #: wall-clock seconds (epoch) the locks were held from and until
    held_from: float | None = None
    held_until: float | None = None
    _locks: list[Any] | None = None

    def acquire(self, say: Callable[[str], None]) -> None:
        """Take every lock in sorted order (no deadlock); ``say`` tells when it waits."""
        import time

        from filelock import FileLock, Timeout

        folder = lock_dir()
        try:
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                # every user's sessions share it (a sticky, world-writable directory)
                with contextlib.suppress(OSError):
                    folder.chmod(0o1777)
        except OSError as exc:
            raise BackendError(f"cannot create the device lock directory {folder}: {exc}") from exc
        self._locks = []
        start = time.perf_counter()
        for key in self.keys:
            lock = FileLock(str(folder / f"{key}.lock"), mode=0o666)
            try:
                lock.acquire(timeout=0)
            except Timeout:  # a TimeoutError, so an OSError: caught first
                holder = _read_owner(folder / f"{key}.owner")
                self.waited_for = [*(self.waited_for or []), f"{key} ({holder})"]
                say(
                    f"waiting for {key}: another measurement holds it ({holder}); "
                    "measurements on one device set run one at a time"
                )
                lock.acquire()
            except OSError as exc:
                raise BackendError(
                    f"cannot take the device lock {folder / key}.lock: {exc}; set "
                    f"{LOCK_DIR_ENV} to a directory every session on this host can write"
                ) from exc
            self._locks.append(lock)
            with contextlib.suppress(OSError):
                (folder / f"{key}.owner").write_text(self.owner, encoding="utf-8")
        self.wait_s = time.perf_counter() - start
        self.held_from = time.time()

    def release(self) -> None:
        """Let the next measurement on these devices start."""
        import time

        self.held_until = time.time()
        for lock in reversed(self._locks or []):
            lock.release()
        self._locks = None

    def to_dict(self) -> dict[str, Any]:
        """The record's ``device_lock`` object."""
        return {
            "keys": list(self.keys),
            "wait_s": round(self.wait_s, 3),
            "waited_for": self.waited_for,
            "held_from": self.held_from,
            "held_until": self.held_until,
        }


def _read_owner(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


# -- machine load around a run -------------------------------------------------------------
#: Others' share of the CPUs during a run, or steal time, above which the run is "busy".
BUSY_OTHERS_PCT = 20.0
BUSY_STEAL_PCT = 5.0


@dataclass(frozen=True)
class LoadSnapshot:
    """Load average, the ``/proc/stat`` CPU counters and this process's CPU time."""

    at: float
    loadavg: tuple[float, float, float] | None
    #: jiffies: (busy excluding steal, steal, total)
    cpu: tuple[int, int, int] | None
    own_cpu_s: float


def load_snapshot() -> LoadSnapshot:
    """Now: the host's load (Linux ``/proc``; None elsewhere) and this process's CPU time."""
    import resource
    import time

    loadavg: tuple[float, float, float] | None = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        parts = Path("/proc/loadavg").read_text(encoding="ascii").split()
        loadavg = (float(parts[0]), float(parts[1]), float(parts[2]))
    cpu: tuple[int, int, int] | None = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        line = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0]
        fields = [
            int(x) for x in line.split()[1:9]
        ]  # user nice system idle iowait irq softirq steal
        idle = fields[3] + fields[4]
        steal = fields[7]
        total = sum(fields)
        cpu = (total - idle - steal, steal, total)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return LoadSnapshot(time.perf_counter(), loadavg, cpu, usage.ru_utime + usage.ru_stime)


def machine_load(before: LoadSnapshot, after: LoadSnapshot) -> dict[str, Any]:
    """The record's ``machine_load``: load averages, steal and others' CPU share during a run.

    ``others_cpu_pct``: CPU time used by every other process, as a share of all the host's
    CPUs over the run (this process's own CPU time is subtracted). ``busy`` when it or the
    steal share passes :data:`BUSY_OTHERS_PCT` / :data:`BUSY_STEAL_PCT`.
    """
    out: dict[str, Any] = {
        "loadavg_before": list(before.loadavg) if before.loadavg else None,
        "loadavg_after": list(after.loadavg) if after.loadavg else None,
        "steal_pct": None,
        "others_cpu_pct": None,
        "busy": False,
        "warning": None,
    }
    if before.cpu is None or after.cpu is None:
        return out
    total = after.cpu[2] - before.cpu[2]
    if total <= 0:
        return out
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy_s = (after.cpu[0] - before.cpu[0]) / hz
    total_s = total / hz
    own_s = after.own_cpu_s - before.own_cpu_s
    steal = 100.0 * (after.cpu[1] - before.cpu[1]) / total
    others = max(0.0, 100.0 * (busy_s - own_s) / total_s)
    out["steal_pct"] = round(steal, 2)
    out["others_cpu_pct"] = round(others, 2)
    if others > BUSY_OTHERS_PCT or steal > BUSY_STEAL_PCT:
        out["busy"] = True
        out["warning"] = (
            f"the machine was busy during this run: other processes used {others:.0f} % of "
            f"the CPUs, steal {steal:.1f} % (load average before "
            f"{before.loadavg[0] if before.loadavg else '?'}); its figures may not be "
            "representative"
        )
    return out
