"""One measurement per device set: host-wide locks, -n 2 without a split, machine load."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_mlperf.placement import (
    LOCK_DIR_ENV,
    DeviceLock,
    LoadSnapshot,
    Placement,
    device_keys,
    machine_load,
)
from tests.builders import pytest_process
from tests.conftest import RunMlperf, load_results


class _Cpu:
    def lock_devices(self) -> list[str]:
        return ["cpu-1", "cpu-0"]


class _Gpu:
    def __init__(self, devices: list[str] | None) -> None:
        self.devices = devices


def test_device_keys_per_cpu_gpu_and_docker_host() -> None:
    assert device_keys(_Cpu(), Placement()) == ["cpu-0", "cpu-1"]
    assert device_keys(_Gpu(["1", "MIG-ab/c"]), Placement()) == ["gpu-1", "gpu-MIG-ab_c"]
    assert device_keys(_Gpu(None), Placement()) == ["gpu-all"]
    remote = Placement(docker_host="tcp://gpu-box:2375")
    assert device_keys(_Gpu(["0"]), remote) == [f"{remote.host_key}-gpu-0"]


def test_a_held_lock_makes_another_process_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path))
    held = DeviceLock(["cpu-0"], "pid test, the holder")
    held.acquire(lambda _line: None)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from pytest_mlperf.placement import DeviceLock
        lock = DeviceLock(["cpu-1", "cpu-0"], "the waiter")
        lock.acquire(print)
        print("ACQUIRED", lock.waited_for)
        lock.release()
        """
    )
    env = {"PATH": "/usr/bin:/bin", LOCK_DIR_ENV: str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # it says it waits, and for whom, before waiting
        assert "waiting for cpu-0" in first and "pid test, the holder" in first
        assert proc.poll() is None  # still waiting while the lock is held
    finally:
        held.release()
    out, _ = proc.communicate(timeout=60)
    assert "ACQUIRED" in out and "cpu-0 (pid test, the holder)" in out
    assert held.to_dict()["held_until"] is not None


def test_machine_load_subtracts_our_own_cpu_time() -> None:
    hz = 100
    import os

    hz = os.sysconf("SC_CLK_TCK")
    before = LoadSnapshot(0.0, (0.1, 0.1, 0.1), (0, 0, 0), 0.0)
    # 2 CPUs for 10 s = 20 CPU-s in total; 12 CPU-s busy, 10 of them ours; no steal
    quiet = LoadSnapshot(10.0, (1.0, 0.5, 0.2), (12 * hz, 0, 20 * hz), 10.0)
    load = machine_load(before, quiet)
    assert load["others_cpu_pct"] == pytest.approx(10.0) and not load["busy"]
    # others used 8 CPU-s of 20 (40 %), and steal 2 of 20 (10 %)
    busy = LoadSnapshot(10.0, (2.0, 1.0, 0.5), (18 * hz, 2 * hz, 20 * hz), 10.0)
    load = machine_load(before, busy)
    assert load["busy"] and load["steal_pct"] == pytest.approx(10.0)
    assert "other processes used 40 % of the CPUs, steal 10.0 %" in load["warning"]
    unknown = LoadSnapshot(10.0, None, None, 1.0)
    assert machine_load(before, unknown)["busy"] is False


def test_two_workers_without_a_split_take_turns(
    run_mlperf: RunMlperf,
    pytester: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))
    result = run_mlperf(
        "-n",
        "2",
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
    )
    result.assert_outcomes(passed=2)
    items = load_results(pytester.path)["items"]
    assert len({i["worker"] for i in items}) == 2  # both workers measured
    spans = sorted((i["device_lock"]["held_from"], i["device_lock"]["held_until"]) for i in items)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end  # no two measurements overlapped on the same CPUs
    assert all(i["device_lock"]["keys"] == items[0]["device_lock"]["keys"] for i in items)
    assert all("machine_load" in i for i in items)


def test_split_workers_hold_disjoint_cpus(
    run_mlperf: RunMlperf,
    pytester: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))
    result = run_mlperf(
        "-n",
        "2",
        "--mlperf-split=cpu",
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
    )
    result.assert_outcomes(passed=2)
    keys = {
        i["worker"]: tuple(i["device_lock"]["keys"]) for i in load_results(pytester.path)["items"]
    }
    if len(keys) == 2:
        first, second = keys.values()
        assert not set(first) & set(second)  # each worker locks only its own CPUs


def test_waiting_is_said_and_recorded(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, tmp_path: Path, model_cache: Path
) -> None:
    """Another session holds the CPU lock until this session says it waits for it (no
    fixed hold time: on a busy machine the session may reach its measurement late).
    ``run_mlperf`` writes the tiny benchmark's conftest; the session runs as a child
    process so its progress lines can be read while it waits."""
    import os
    import threading

    lock_dir = tmp_path / "locks"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from pytest_mlperf.placement import DeviceLock
        lock = DeviceLock(["cpu-{min(os.sched_getaffinity(0))}"], "pid 1, another session")
        lock.acquire(print)
        print("HELD", flush=True)
        sys.stdin.readline()  # held until the test has seen the session wait
        lock.release()
        """
    )
    env = {"PATH": "/usr/bin:/bin", LOCK_DIR_ENV: str(lock_dir)}
    holder = subprocess.Popen(
        [sys.executable, "-u", "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert holder.stdin is not None and holder.stdout is not None
    assert holder.stdout.readline().strip() == "HELD"
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.flush()

    # never hang: a session that does not say it waits gets the lock after 300 s (and fails)
    watchdog = threading.Timer(300, release)
    watchdog.start()
    session = pytest_process(
        pytester.path,
        f"--mlperf-cache-dir={model_cache}",
        "-p",
        "no:randomly",
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        "-s",
        env={LOCK_DIR_ENV: str(lock_dir)},
    )
    assert session.stdout is not None
    lines = []
    waited_before_release = False
    try:
        for line in session.stdout:
            lines.append(line)
            if "waiting for cpu-" in line and not released.is_set():
                waited_before_release = True
                release()
        session.wait(timeout=600)
    finally:
        watchdog.cancel()
        release()
        holder.communicate(timeout=60)
    output = "".join(lines)
    assert waited_before_release, output
    assert "another measurement holds it (pid 1, another session)" in output
    assert session.returncode == 0, output
    (item,) = load_results(pytester.path)["items"]
    assert item["device_lock"]["waited_for"] and item["device_lock"]["wait_s"] > 0
    assert time.time() >= item["device_lock"]["held_until"]


def test_an_unusable_lock_directory_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_mlperf.errors import BackendError

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(LOCK_DIR_ENV, str(blocker / "locks"))
    with pytest.raises(BackendError, match="cannot create the device lock directory"):
        DeviceLock(["cpu-0"], "me").acquire(lambda _line: None)


def _nvidia(tmp_path: Path, devices: tuple[str, ...] | None, gpus: int) -> object:
    from pytest_mlperf.backends.nvidia.backend import NvidiaBackend, NvidiaSettings
    from pytest_mlperf.host.probe import GpuInfo, HostRecord

    backend = NvidiaBackend(NvidiaSettings(results_dir=tmp_path, devices=devices))
    backend.host = HostRecord(
        gpus=[
            GpuInfo(i, "NVIDIA H100 80GB HBM3", f"GPU-uuid-{i}", 81559, 700.0, None, "0x2330")
            for i in range(gpus)
        ]
    )
    return backend


def test_nvidia_locks_every_gpu_by_index_so_all_and_one_gpu_exclude_each_other(
    tmp_path: Path,
) -> None:
    every = device_keys(_nvidia(tmp_path, ("all",), 8), Placement())
    assert every == [f"gpu-{i}" for i in range(8)]  # not one "gpu-all" that gpu-1 never meets
    one = device_keys(_nvidia(tmp_path, ("GPU-uuid-1",), 8), Placement())
    assert one == ["gpu-1"]  # a GPU named by UUID locks by index
    assert set(one) <= set(every)
    assert device_keys(_nvidia(tmp_path, ("all",), 0), Placement()) == ["gpu-all"]  # unknown
