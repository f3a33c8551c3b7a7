"""--mlperf-baseline with several runs: their repeats pooled into one baseline.

The figures are bert-99 (reference backend, --mlperf-fast, --mlperf-repeat=3) from
consecutive sessions of one build on the 2-core VM (``bench/regression_detect.py --save``):
the machine drifted by about 20 % between two sessions, more than either session's repeats
spread, so a one-session baseline raised a false alarm.
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.baseline import INCONCLUSIVE, REGRESSED, compare_pair
from pytest_mlperf.history.results_file import ResultsFile, pool_results
from tests.conftest import RunMlperf, load_results, perf_record

#: Offline samples/s of three consecutive sessions (repeat 3 each)
SESSION_A = [142.826, 139.687, 140.745]
SESSION_B = [105.733, 117.76, 111.275]
SESSION_C = [126.808, 146.342, 131.92]


def _record(values: list[float], scenario: str = "Offline", **extra: Any) -> dict[str, Any]:
    median = statistics.median(values)
    fields: dict[str, Any] = {
        "result_validity": "VALID",
        "settings": {"expected_qps": 116.63},
        "loadgen": {},
        "repeat": {
            "count": len(values),
            "values": values,
            "median": median,
            "min": min(values),
            "max": max(values),
            "runs": [{"value": v, "p99_latency_ns": None} for v in values],
        },
    }
    fields.update(extra)
    return perf_record(
        "bert-99", scenario, "result_samples_per_second", median, "samples/s", **fields
    )


def _file(run_id: str, *records: dict[str, Any]) -> ResultsFile:
    return ResultsFile(
        path=Path(f"/b/{run_id}/results.json"),
        run_id=run_id,
        system="reference-cpu",
        backend="reference",
        started=None,
        finished="2026-12-02T03:42:00",
        fast=True,
        items=records,
    )


def test_the_drift_between_two_sessions_is_not_a_regression() -> None:
    # -20.9 % between two sessions of one build: B's own repeats spread 10.8 %, and a
    # change within twice the noise is not claimed (the bench's false alarm before)
    comparison = compare_pair(_record(SESSION_B), _record(SESSION_A), 5.0, "b")
    assert comparison.status == INCONCLUSIVE
    assert comparison.delta_pct == pytest.approx(-20.94, abs=0.01)
    assert "not beyond 2 x the noise" in comparison.reason


def test_pooling_two_sessions_holds_their_drift_in_the_baseline_noise() -> None:
    a, c = _record(SESSION_A), _record(SESSION_C)
    pooled = pool_results([_file("a", a), _file("c", c)])
    (record,) = pooled.items
    rep = record["repeat"]
    assert sorted(rep["values"]) == sorted(SESSION_A + SESSION_C)
    assert rep["median"] == statistics.median(SESSION_A + SESSION_C)
    assert (rep["min"], rep["max"]) == (min(SESSION_C), max(SESSION_C))
    assert rep["sessions"] == ["a", "c"] and rep["count"] == 6
    assert [r["run_id"] for r in rep["runs"]] == ["a"] * 3 + ["c"] * 3
    comparison = compare_pair(_record(SESSION_B), record, 5.0, pooled.describe())
    assert comparison.status == INCONCLUSIVE
    # the baseline's noise is now the spread across sessions: wider than A's alone
    alone = compare_pair(_record(SESSION_B), a, 5.0, "b")
    assert comparison.baseline_noise_pct is not None and alone.baseline_noise_pct is not None
    assert comparison.baseline_noise_pct > 5 * alone.baseline_noise_pct
    assert "pooled with 1 more: /b/c/results.json (run c)" in comparison.reason
    # the baseline's first run is kept as it was
    assert pooled.run_id == "a" and pooled.items[0]["settings"] == {"expected_qps": 116.63}


def test_a_real_slowdown_still_fails_against_a_pooled_baseline() -> None:
    pooled = pool_results([_file("a", _record(SESSION_A)), _file("c", _record(SESSION_C))])
    slower = [v * 0.6 for v in SESSION_B]  # 40 % below a session of the same build
    assert compare_pair(_record(slower), pooled.items[0], 5.0, "b").status == REGRESSED


def test_only_like_for_like_records_are_pooled() -> None:
    other_system = _record(SESSION_C, system="H100-SXM-80GBx8")
    pooled = pool_results([_file("a", _record(SESSION_A)), _file("c", other_system)])
    assert pooled.items[0]["repeat"]["values"] == SESSION_A
    # Server: only runs at the first run's target QPS (another target's metric is its echo)
    server = {"target_qps": 80.8}
    first = _record([80.76, 80.74, 80.84], "Server", settings=server)
    same = _record([80.76, 80.65, 80.81], "Server", settings=server)
    other = _record([60.1, 60.0, 60.2], "Server", settings={"target_qps": 60.0})
    pooled = pool_results([_file("a", first), _file("b", same), _file("c", other)])
    assert pooled.items[0]["repeat"]["sessions"] == ["a", "b"]
    # an item only another run has is not added: the first run says what the baseline is
    extra = _record(SESSION_C, scenario="SingleStream")
    assert len(pool_results([_file("a", _record(SESSION_A)), _file("c", extra)]).items) == 1


def test_one_run_is_the_run_itself() -> None:
    single = _file("a", _record(SESSION_A))
    assert pool_results([single]) is single and "pooled" not in single.describe()


def test_pooled_baselines_from_the_command_line(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    saved = []
    for name in ("one", "two"):
        target = tmp_path / f"{name}.json"
        run_mlperf(
            "--mlperf-benchmarks=tiny-99",
            "--mlperf-scenarios=Offline",
            "--mlperf-fast",
            "--mlperf-repeat=2",
            f"--mlperf-save-baseline={target}",
        ).assert_outcomes(passed=1)
        saved.append(target)
        shutil.rmtree(pytester.path / "mlperf-results")
    first, second = saved
    values = [
        v for path in saved for v in json.loads(path.read_text())["items"][0]["repeat"]["values"]
    ]
    run_mlperf(
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        f"--mlperf-baseline={first},{second}",
        "--mlperf-tolerance=99",
    )
    data = load_results(pytester.path)
    assert data["settings"]["baseline"] == str(first)
    (pooled,) = data["settings"]["baseline_pooled"]
    assert pooled.startswith(f"{second} (run ")
    (item,) = data["items"]
    assert item["baseline"]["baseline_value"] == pytest.approx(statistics.median(values))
    assert "pooled with 1 more" in item["baseline"]["reason"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{b},", "*--mlperf-baseline: '{b},' has an empty entry*several separated by commas*"),
        ("{b},{b}", "*--mlperf-baseline: '{b}' is the same run as '{b}'*"),
    ],
)
def test_bad_baseline_lists_name_the_value(
    run_mlperf: RunMlperf, tmp_path: Path, value: str, message: str
) -> None:
    base = tmp_path / "b.json"
    run_mlperf(
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        f"--mlperf-save-baseline={base}",
    ).assert_outcomes(passed=1)
    result = run_mlperf("--mlperf-benchmarks=tiny-99", f"--mlperf-baseline={value.format(b=base)}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message.format(b=base)])
