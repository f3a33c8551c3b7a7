"""--mlperf-repeat (median of N runs), the noise-aware baseline rule, pinned baseline targets."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.baseline import (
    IMPROVED,
    INCONCLUSIVE,
    REGRESSED,
    UNCHANGED,
    Figures,
    compare_pair,
    judge_change,
)
from pytest_mlperf.measure import repeat_summary
from pytest_mlperf.results.loadgen import ParsedLog
from tests.conftest import RunMlperf, load_results


def _parsed(value: float | None, unit: str = "samples/s") -> ParsedLog:
    return ParsedLog(source="x", metric_value=value, unit=unit, result_validity="VALID")


def test_repeat_summary_judges_the_median_run() -> None:
    summary, judged = repeat_summary(
        [(_parsed(v), Path(f"r{i}")) for i, v in enumerate([100.0, 120.0, 90.0])]
    )
    assert judged == 0  # 100 is the median of 90, 100, 120
    assert (summary["median"], summary["min"], summary["max"]) == (100.0, 90.0, 120.0)
    assert summary["spread_pct"] == pytest.approx(30.0)
    assert summary["judged_run"] == 1 and summary["count"] == 3


def test_repeat_summary_even_count_and_latency_pick_the_worse_middle_run() -> None:
    _, judged = repeat_summary([(_parsed(v), Path("r")) for v in [100.0, 110.0, 90.0, 120.0]])
    assert judged == 0  # middle ones 100 and 110 (throughput): the worse is 100
    runs = [(_parsed(v, "ns"), Path("r")) for v in [5e6, 7e6, 6e6, 8e6]]
    _, judged = repeat_summary(runs)
    assert judged == 1  # latency: middle ones 6 and 7 ms, the worse is 7 ms


def test_repeat_summary_counts_a_run_without_a_metric_as_worst() -> None:
    summary, judged = repeat_summary([(_parsed(v), Path("r")) for v in [None, 100.0, 120.0]])
    assert judged == 1  # order: 120, 100, None -> the middle is 100
    assert summary["values"] == [None, 100.0, 120.0] and summary["min"] == 100.0


def _fig(value: float, spread_pct: float = 0.0) -> Figures:
    half = value * spread_pct / 200.0
    return Figures(value, value - half, value + half)


@pytest.mark.parametrize(
    ("cur", "base", "higher", "status"),
    [
        (_fig(90, 2), _fig(100, 2), True, REGRESSED),  # -10 %, ranges apart
        (_fig(90, 20), _fig(100, 2), True, INCONCLUSIVE),  # noise 20 % > 5 %
        (_fig(100, 2), _fig(100, 12), True, INCONCLUSIVE),  # the baseline's noise
        (_fig(99, 1), _fig(100, 1), True, UNCHANGED),
        (_fig(110, 1), _fig(100, 1), True, IMPROVED),
        (_fig(110, 2), _fig(100, 2), False, REGRESSED),  # latency up 10 %
        (_fig(90, 2), _fig(100, 2), False, IMPROVED),
        (_fig(30, 0), _fig(100, 30), True, REGRESSED),  # -70 %: beyond twice the noise
        (_fig(30, 0), _fig(100, 40), True, INCONCLUSIVE),  # -70 % but noise 40 %
        (_fig(79, 10), _fig(100, 2), True, REGRESSED),  # -21 % > 2 x 10 %, ranges apart
        (_fig(80, 11), _fig(100, 2), True, INCONCLUSIVE),  # -20 % < 2 x 11 %: drift-sized
        (_fig(150, 10), _fig(100, 2), True, IMPROVED),  # +50 % > 2 x 10 %
        (_fig(115, 10), _fig(100, 2), True, INCONCLUSIVE),  # +15 % < 2 x 10 %
        (_fig(130, 10), _fig(100, 2), False, REGRESSED),  # latency +30 % > 2 x 10 %
    ],
)
def test_noise_rule(cur: Figures, base: Figures, higher: bool, status: str) -> None:
    assert judge_change(cur, base, higher, 5.0)[0] == status


def test_beyond_tolerance_but_overlapping_ranges_is_inconclusive() -> None:
    # -6 % with about 4 % noise on each side: the ranges overlap, no regression is claimed
    cur, base = Figures(94.0, 93.0, 96.8), Figures(100.0, 96.5, 100.5)
    status, delta, _bound, why = judge_change(cur, base, True, 5.0)
    assert status == INCONCLUSIVE and delta == pytest.approx(-6.0)
    assert "within the noise" in why


def _record(value: float, **extra: Any) -> dict[str, Any]:
    return {
        "benchmark": "tiny-99",
        "scenario": "Server",
        "mode": "performance",
        "config_ver": "default",
        "system": "s",
        "fast": True,
        "metric": {"name": "result_completed_samples_per_sec", "value": value, "unit": "samples/s"},
        "result_validity": "VALID",
        "settings": {},
        "loadgen": {},
        **extra,
    }


def test_pinned_server_targets_compare_latency_and_validity() -> None:
    base = _record(
        50.0, settings={"target_qps": 50.0}, loadgen={"result_99.00_percentile_latency_ns": 10e6}
    )
    slower = _record(
        50.0, settings={"target_qps": 50.0}, loadgen={"result_99.00_percentile_latency_ns": 13e6}
    )
    comparison = compare_pair(slower, base, 5.0, "b")
    assert comparison.status == REGRESSED and comparison.unit == "ns"
    assert comparison.compared and "99.00_percentile" in comparison.compared
    invalid = _record(50.0, settings={"target_qps": 50.0}, result_validity="INVALID")
    assert compare_pair(invalid, base, 5.0, "b").status == REGRESSED
    # another target: the metric (the target's echo) is compared as before
    other = _record(45.0, settings={"target_qps": 45.0})
    assert compare_pair(other, base, 5.0, "b").compared == "result_completed_samples_per_sec"


def test_inconclusive_comparison_skips_with_the_figures() -> None:
    from pytest_mlperf.baseline import with_baseline
    from pytest_mlperf.checks import OK, Check, Outcome, Verdict

    cur = _record(90.0, scenario="Offline", repeat={"median": 90.0, "min": 70.0, "max": 110.0})
    base = _record(100.0, scenario="Offline")
    comparison = compare_pair(cur, base, 5.0, "b")
    assert comparison.status == INCONCLUSIVE
    assert comparison.noise_pct == pytest.approx(44.444, abs=0.01)
    verdict = with_baseline(
        Verdict(Outcome.PASSED, [Check("validity", "VALID", "VALID", OK)], []), comparison
    )
    assert verdict.outcome == "skipped"
    assert "inconclusive" in verdict.reasons[0] and "noise 44.4 %" in verdict.reasons[0]


def test_repeat_runs_n_times_and_reports_the_spread(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    result = run_mlperf(
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        "--mlperf-repeat=3",
        "--junitxml=junit.xml",
        "--html=report.html",
    )
    result.assert_outcomes(passed=1)
    (item,) = load_results(pytester.path)["items"]
    rep = item["repeat"]
    assert rep["count"] == 3 and len(rep["runs"]) == 3
    values = sorted(v for v in rep["values"])
    assert rep["median"] == values[1] and (rep["min"], rep["max"]) == (values[0], values[2])
    judged = rep["runs"][rep["judged_run"] - 1]
    assert item["log_dir"] == judged["log_dir"] and item["metric"]["value"] == rep["median"]
    for run in rep["runs"]:
        assert (Path(run["log_dir"]) / "mlperf_log_detail.txt").is_file()
        assert "machine_load" in run
    result.stdout.fnmatch_lines(["*runs*range (spread)*", "*tiny-99*Offline*  3  *-*(*%)*"])
    props = {
        p.get("name"): p.get("value")
        for p in ET.parse(pytester.path / "junit.xml").iter("property")
    }
    assert props["mlperf/tiny-99/Offline/performance/repeat_count"] == "3"
    assert "mlperf/tiny-99/Offline/performance/repeat_spread_pct" in props
    html = (pytester.path / "report.html").read_text()
    assert 'id="mlperf-repeats"' in html


@pytest.mark.parametrize("value", ["0", "x", "101", "-2"])
def test_a_bad_repeat_count_is_a_usage_error(run_mlperf: RunMlperf, value: str) -> None:
    result = run_mlperf("--mlperf-benchmarks=tiny", f"--mlperf-repeat={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--mlperf-repeat: '{value}' is not a whole number*1 to 100*"])


def test_a_baseline_pins_the_targets_it_ran_with(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps({"targets": {"tiny-99": {"Server": {"target_qps": 100}}}}))
    saved = tmp_path / "base.json"
    first = run_mlperf(
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Server,Offline",
        "--mlperf-fast",
        f"--mlperf-targets={targets}",
        f"--mlperf-save-baseline={saved}",
    )
    first.assert_outcomes(passed=2)
    base_items = {i["scenario"]: i for i in json.loads(saved.read_text())["items"]}
    for path in (pytester.path / "mlperf-results").iterdir():
        import shutil

        if path.is_dir():  # the runs (history.sqlite, the default history store, stays)
            shutil.rmtree(path)
    second = run_mlperf(
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Server,Offline",
        "--mlperf-fast",
        f"--mlperf-baseline={saved}",
        "--mlperf-tolerance=99",
    )
    items = {i["scenario"]: i for i in load_results(pytester.path)["items"]}
    assert items["Server"]["settings"]["target_qps"] == 100  # the baseline's, not a search
    assert items["Server"]["calibration"] is None
    assert items["Server"]["targets_source"] == f"--mlperf-baseline {saved}"
    assert "99.00_percentile" in items["Server"]["baseline"]["compared"]
    # Offline's expected_qps only sizes the run: calibrated anew, never pinned (issue 26
    # point 4: a faster machine at a slower baseline's expected_qps runs out of samples)
    assert base_items["Offline"]["settings"]["expected_qps"] > 0
    assert items["Offline"]["targets_source"] is None
    assert items["Offline"]["calibration"]["targets"].keys() == {"expected_qps"}
    assert second.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
