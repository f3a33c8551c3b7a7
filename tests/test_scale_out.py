"""pytest-xdist: one preparation per host, per-worker shares, crashed workers, merged results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_mlperf.errors import BackendError
from pytest_mlperf.placement import Placement, mig_uuids, parse_smi_list
from tests.conftest import TINY_CONFTEST, RunMlperf, load_results

HOST = Path(__file__).parent / "data" / "host"


def test_shares_of_gpus_and_mig_slices() -> None:
    listing = (HOST / "nvidia-smi-L-mig.txt").read_text()
    gpus = parse_smi_list(listing)
    assert [g["index"] for g in gpus] == [0, 1]
    assert [m["profile"] for m in gpus[0]["mig"]] == ["3g.40gb", "2g.20gb", "1g.10gb"]
    slices = mig_uuids(listing)
    assert len(slices) == 4 and all(s.startswith("MIG-") for s in slices)
    w0 = Placement("gw0", 0, 2, "mig")
    w1 = Placement("gw1", 1, 2, "mig")
    assert w0.share(slices, "MIG devices") == [slices[0], slices[2]]
    assert w1.share(slices, "MIG devices") == [slices[1], slices[3]]
    assert set(w0.share(slices, "x")).isdisjoint(w1.share(slices, "x"))
    assert Placement("main", 0, 1, "none").share(["0", "1"], "GPUs") == ["0", "1"]
    with pytest.raises(
        BackendError,
        match=r"worker gw2 gets no GPUs: 3 workers share 2 GPUs \(0, 1\); use fewer workers",
    ):
        Placement("gw2", 2, 3, "gpu").share(["0", "1"], "GPUs")


def test_placement_from_xdist_workerinput() -> None:
    hosts = ("unix:///a.sock", "tcp://127.0.0.1:2375")
    p = Placement.from_workerinput({"workerid": "gw3", "workercount": 4}, "gpu", hosts)
    assert (p.worker, p.index, p.count, p.docker_host) == ("gw3", 3, 4, "tcp://127.0.0.1:2375")
    assert Placement.from_workerinput(None, "none", ()).host_key == "local"


def test_two_workers_one_preparation_cpu_shares(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    cache = pytester.mkdir("fresh-cache")  # nothing built yet: exactly one worker must build
    result = run_mlperf(
        "-n",
        "2",
        "--mlperf-benchmarks=tiny",
        "--mlperf-fast",
        "--mlperf-split=cpu",
        f"--mlperf-cache-dir={cache}",
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["prepared 2 time(s) (gw*, gw*); work done: built model *.onnx*"])
    data = load_results(pytester.path)
    preparations = data["preparations"]
    assert sorted(p["worker"] for p in preparations) == ["gw0", "gw1"]
    built = [w for p in preparations for w in p["work"] if w.startswith("built model")]
    assert len(built) == 1  # the second worker waited on the lock and reused the model
    devices = {(i["worker"], i["device"]) for i in data["items"]}
    assert {w for w, _ in devices} == {"gw0", "gw1"}
    assert {d for _, d in devices} == {"cpus 0", "cpus 1"}


def test_more_workers_than_cpus_is_reported_once_per_item(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    result = run_mlperf(
        "-n",
        "3",
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream,Server",
        "--mlperf-fast",
        "--mlperf-split=cpu",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("error", 0) + outcomes.get("errors", 0) == 3
    if outcomes.get("errors") or outcomes.get("error"):  # the third worker on a 2-CPU machine
        result.stdout.fnmatch_lines(["*worker gw2 gets no CPUs: 3 workers share 2 CPUs*"])


CRASHING_CONFTEST = (
    TINY_CONFTEST
    + """
import os
import pytest
from pytest_mlperf.backends.reference import ReferenceBackend

class CrashOnServer(ReferenceBackend):
    def run(self, request, progress):
        if request.scenario == "Server":
            os._exit(3)  # the worker process dies mid-item
        return super().run(request, progress)

@pytest.hookimpl(tryfirst=True)
def pytest_mlperf_make_backend(name, run_config, config):
    return CrashOnServer(run_config.cache_dir, run_config.calibrate)
"""
)


def test_a_crashed_worker_loses_no_other_item(pytester: pytest.Pytester, model_cache: Path) -> None:
    pytester.makeconftest(CRASHING_CONFTEST)
    result = pytester.runpytest(
        "-n", "2", "--mlperf-benchmarks=tiny", "--mlperf-fast", f"--mlperf-cache-dir={model_cache}"
    )
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 3 and outcomes["failed"] == 1
    result.stdout.fnmatch_lines(
        ["*worker 'gw*' crashed while running 'mlperf::tiny-99[[]Server-performance[]]'*"]
    )
    items = {i["scenario"]: i for i in load_results(pytester.path)["items"]}
    assert set(items) == {"Offline", "Server", "SingleStream", "MultiStream"}
    assert items["Server"]["verdict"]["outcome"] == "error"
    assert "crashed" in items["Server"]["errors"][0]
    assert items["Offline"]["verdict"]["outcome"] == "passed"


def test_whole_machine_items_form_one_group(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    result = run_mlperf(
        "-n",
        "2",
        "--dist",
        "loadgroup",
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
    )
    result.assert_outcomes(passed=2)
    workers = {i["worker"] for i in load_results(pytester.path)["items"]}
    assert len(workers) == 1  # no split: both items ran on the same worker, one at a time
    assert json.dumps(sorted(workers))
