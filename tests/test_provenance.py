"""Provenance: the hash changes with every input and only then; --mlperf-reuse reuses it."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.provenance import digest, find_reusable, provenance
from pytest_mlperf.schemas import validate
from tests.conftest import TINY_DIR, RunMlperf

BENCH: dict[str, Any] = json.loads((TINY_DIR / "tiny.json").read_text())
HOST = {
    "backend": "nvidia",
    "harness_commit": "a" * 40,
    "image": "pytest-mlperf/harness:0123",
    "driver_version": "550.127.05",
    "cuda_version": "12.4",
    "loadgen": "4.1.0",
    "hostname": "node-1",
    "work_done": ["built image"],
}


def prov(**change: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "benchmark_data": BENCH,
        "variant": "tiny-99",
        "scenario": "Offline",
        "mode": "performance",
        "config_ver": "default",
        "fast": True,
        "overrides": {},
        "backend": "nvidia",
        "system": "A100-SXM4-40GBx8",
        "calibrate": True,
        "host": HOST,
        "plugin_version": "0.1.0",
    }
    args.update(change)
    return provenance(**args)


def changed_benchmark() -> dict[str, Any]:
    data = copy.deepcopy(BENCH)
    data["reference"]["batch_size"]["Offline"] += 1
    return data


@pytest.mark.parametrize(
    "change",
    [
        {"benchmark_data": changed_benchmark()},
        {"variant": "tiny-99.9"},
        {"scenario": "Server"},
        {"mode": "accuracy"},
        {"config_ver": "triton"},
        {"fast": False},
        {"overrides": {"max_latency_ms": 5.0}},
        {"backend": "reference"},
        {"system": "H100-SXM-80GBx8"},
        {"calibrate": False},
        {"host": {**HOST, "harness_commit": "b" * 40}},
        {"host": {**HOST, "image": "pytest-mlperf/harness:4567"}},
        {"host": {**HOST, "driver_version": "550.90.07"}},
        {"host": {**HOST, "cuda_version": "12.5"}},
        {"host": {**HOST, "loadgen": "4.1.1"}},
        {"plugin_version": "0.2.0"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_provenance_changes_with_every_input(change: dict[str, Any]) -> None:
    assert prov(**change)["id"] != prov()["id"]


def test_provenance_is_stable_otherwise() -> None:
    first = prov()
    assert first == prov(benchmark_data=json.loads(json.dumps(BENCH)))  # a fresh copy
    # facts that do not change what is produced: host name, work done, dict order
    same_host = {"work_done": [], "hostname": "node-2", **dict(reversed(list(HOST.items())))}
    same_host["hostname"], same_host["work_done"] = "node-2", []
    assert prov(host=same_host)["id"] == first["id"]
    assert len(first["id"]) == 64 and first["status"] == "fresh"
    assert first["inputs"]["benchmark_sha256"] == digest(BENCH)


def test_find_reusable_needs_equal_id_finished_run_and_logs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    item = tmp_path / "r1" / "tiny-99" / "Offline" / "performance"
    item.mkdir(parents=True)
    record = {
        "provenance": {"id": "x" * 64},
        "verdict": {"outcome": "passed"},
        "result_validity": "VALID",
        "log_dir": str(logs),
    }
    (item / "result.json").write_text(json.dumps(record))
    parts = ("tiny-99", "Offline", "performance")
    found = find_reusable(tmp_path, tmp_path / "r2", parts, "x" * 64)
    assert found is not None and found[0] == item / "result.json"
    assert find_reusable(tmp_path, tmp_path / "r2", parts, "y" * 64) is None
    assert find_reusable(tmp_path, tmp_path / "r1", parts, "x" * 64) is None  # the current run
    (item / "result.json").write_text(json.dumps({**record, "verdict": {"outcome": "error"}}))
    assert find_reusable(tmp_path, tmp_path / "r2", parts, "x" * 64) is None
    (item / "result.json").write_text(json.dumps({**record, "log_dir": str(tmp_path / "gone")}))
    assert find_reusable(tmp_path, tmp_path / "r2", parts, "x" * 64) is None


def _records(root: Path) -> list[dict[str, Any]]:
    runs = sorted((root / "mlperf-results").glob("*/results.json"))
    return [json.loads(p.read_text())["items"][0] for p in runs]


def test_reuse_end_to_end(run_mlperf: RunMlperf, pytester: pytest.Pytester) -> None:
    args = ("--mlperf-benchmarks=tiny", "--mlperf-scenarios=Offline", "--mlperf-fast")
    run_mlperf(*args).assert_outcomes(passed=1)
    time.sleep(1.1)  # run ids have one-second resolution
    run_mlperf(*args).assert_outcomes(passed=1)
    first, second = _records(pytester.path)
    for record in (first, second):
        validate(record, "result", "result.json")
        assert record["provenance"]["status"] == "fresh"  # never reused without the option
    assert first["provenance"]["id"] == second["provenance"]["id"]
    assert first["log_dir"] != second["log_dir"]
    assert len(first["provenance"]["settings_sha256"]) == 64

    time.sleep(1.1)
    reused = run_mlperf(*args, "--mlperf-reuse", "--html=report.html")
    reused.assert_outcomes(passed=1)
    assert "mlperf-provenance" in (pytester.path / "report.html").read_text()
    reused.stdout.fnmatch_lines(["*reusing *result.json*", "tiny-99*Offline*PASSED (reused)"])
    third = _records(pytester.path)[2]
    validate(third, "result", "result.json")
    assert third["provenance"]["status"] == "reused"
    assert third["provenance"]["id"] == second["provenance"]["id"]
    assert third["log_dir"] == second["log_dir"]  # the newest identical result's logs
    assert third["metric"] == second["metric"]

    time.sleep(1.1)
    other = run_mlperf(*args, "--mlperf-reuse", "--mlperf-threads=1")  # a different input
    other.assert_outcomes(passed=1)
    fourth = _records(pytester.path)[3]
    assert fourth["provenance"]["status"] == "fresh"
    assert fourth["provenance"]["id"] != second["provenance"]["id"]
