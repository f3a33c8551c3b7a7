"""Baselines, tolerances and compare on saved results: the rules on both sides of every line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.baseline import (
    IMPROVED,
    REGRESSED,
    UNCHANGED,
    compare_pair,
    compare_to_baseline,
    parse_tolerance,
    with_baseline,
)
from pytest_mlperf.checks import FAIL, OK, Check, Outcome, Verdict
from pytest_mlperf.compare import compare_rows, compare_text
from pytest_mlperf.errors import ConfigError, DataError
from pytest_mlperf.history.results_file import (
    find_results_file,
    load_results,
    pinned_targets,
    save_baseline,
)
from pytest_mlperf.thresholds import ThresholdTable, load_thresholds, shipped_threshold_files


def item(
    scenario: str = "Offline",
    value: float | None = 100.0,
    *,
    benchmark: str = "bert-99",
    mode: str = "performance",
    config_ver: str = "default",
    system: str = "box",
    fast: bool = True,
    outcome: str = "passed",
) -> dict[str, Any]:
    unit = "ns" if scenario in ("SingleStream", "MultiStream") else "samples/s"
    name = {
        "Offline": "result_samples_per_second",
        "Server": "result_completed_samples_per_sec",
        "SingleStream": "result_90.00_percentile_latency_ns",
        "MultiStream": "result_99.00_percentile_per_query_latency_ns",
    }[scenario]
    return {
        "benchmark": benchmark,
        "scenario": scenario,
        "mode": mode,
        "config_ver": config_ver,
        "system": system,
        "fast": fast,
        "metric": {"name": name, "value": value, "unit": unit},
        "verdict": {"outcome": outcome, "reasons": [], "checks": []},
    }


def results_file(path: Path, items: list[dict[str, Any]], finished: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "schema_version": 1,
        "run_id": path.parent.name,
        "started": "2026-11-24T10:00:00+00:00",
        "finished": "2026-11-24T10:05:00+00:00" if finished else None,
        "backend": "reference",
        "system": "box",
        "host": {},
        "settings": {"fast": True},
        "items": items,
    }
    path.write_text(json.dumps(data))
    return path


# -- tolerance ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "pct"), [("5", 5.0), ("5%", 5.0), (" 2.5 % ", 2.5), ("0", 0.0)])
def test_tolerance_forms(text: str, pct: float) -> None:
    assert parse_tolerance(text) == pct


@pytest.mark.parametrize("text", ["-1", "100", "150%", "five", "", "5%%"])
def test_bad_tolerance_names_the_value(text: str) -> None:
    with pytest.raises(ConfigError, match=rf"--mlperf-tolerance: {text!r} is not a percentage"):
        parse_tolerance(text)


# -- the comparison rule --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "status"),
    [(94.9, REGRESSED), (95.0, UNCHANGED), (104.9, UNCHANGED), (105.1, IMPROVED)],
)
def test_throughput_both_sides_of_the_tolerance(value: float, status: str) -> None:
    result = compare_pair(item(value=value), item(value=100.0), 5.0, "base.json")
    assert result.status == status
    assert result.delta_pct == pytest.approx(value - 100.0)
    assert result.check().passed is (status != REGRESSED)


@pytest.mark.parametrize(
    ("ns", "status"),
    [(1_050_001, REGRESSED), (1_050_000, UNCHANGED), (960_000, UNCHANGED), (940_000, IMPROVED)],
)
def test_latency_both_sides_of_the_tolerance(ns: float, status: str) -> None:
    result = compare_pair(
        item("SingleStream", ns), item("SingleStream", 1_000_000), 5.0, "base.json"
    )
    assert result.status == status
    check = result.check()
    assert check.expected == "<= 1.050 ms (baseline 1.000 ms + 5 %)"
    assert check.passed is (status != REGRESSED)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"config_ver": "high_accuracy"}, "config_ver default here, high_accuracy in the baseline"),
        ({"system": "other"}, "system box here, other in the baseline"),
        ({"fast": False}, "fast True here, False in the baseline"),
    ],
)
def test_unlike_runs_are_skipped_not_passed(change: dict[str, Any], reason: str) -> None:
    base = {**item(value=1.0), **change}  # the current value would be a big "improvement"
    result = compare_pair(item(value=100.0), base, 5.0, "base.json")
    assert result.status == Outcome.SKIPPED
    assert reason in result.reason
    verdict = with_baseline(
        Verdict(Outcome.PASSED, [Check("validity", "VALID", "VALID", OK)]), result
    )
    assert verdict.outcome == Outcome.SKIPPED
    assert verdict.reasons == [f"baseline not compared: {result.reason}"]
    assert verdict.checks[-1].skipped


def test_missing_item_or_value_is_skipped(tmp_path: Path) -> None:
    base = load_results(
        results_file(tmp_path / "run" / "results.json", [item(value=None, outcome="error")]),
        "--mlperf-baseline",
    )
    missing = compare_to_baseline(item("Server"), base, 5.0)
    assert missing.status == Outcome.SKIPPED
    assert missing.reason.startswith("no bert-99 Server performance item in the baseline")
    no_value = compare_to_baseline(item(), base, 5.0)
    assert no_value.status == Outcome.SKIPPED
    assert "the baseline run has no metric value (its verdict: error)" in no_value.reason


def test_a_baseline_pins_servers_target_not_what_only_sizes_a_run(tmp_path: Path) -> None:
    """Issue 26 point 4: a slower baseline's Offline expected_qps made a faster run INVALID."""
    runs = {
        "Offline": {"expected_qps": 116.6},
        "Server": {"target_qps": 80.0},
        "SingleStream": {"expected_latency_ns": 4_000_000},
    }
    items = [{**item(s), "settings": settings} for s, settings in runs.items()]
    base = load_results(results_file(tmp_path / "r" / "results.json", items), "--mlperf-baseline")
    found = {s: pinned_targets(base, item(s)) for s in runs}
    assert found == {"Offline": None, "Server": {"target_qps": 80.0}, "SingleStream": None}


def test_a_regression_fails_even_a_failed_item_keeps_its_reasons() -> None:
    regressed = compare_pair(item(value=50.0), item(value=100.0), 5.0, "b")
    failed = Verdict(
        Outcome.FAILED, [Check("validity", "INVALID", "VALID", FAIL)], ["validity: INVALID"]
    )
    out = with_baseline(failed, regressed)
    assert out.outcome == Outcome.FAILED
    assert out.reasons[0] == "validity: INVALID"
    assert out.reasons[1].startswith("baseline: 50.00 samples/s (-50.0 %) (expected >= 95.00")
    skipped = compare_pair(item(value=50.0), item(value=100.0, system="x"), 5.0, "b")
    assert with_baseline(failed, skipped).outcome == Outcome.FAILED  # a skip never hides a failure


# -- finding and reading results ------------------------------------------------------------
def test_a_results_dir_means_its_newest_finished_run(tmp_path: Path) -> None:
    results_file(tmp_path / "20261124-100000-1" / "results.json", [item(value=1.0)])
    newest_done = results_file(tmp_path / "20261124-110000-2" / "results.json", [item()])
    results_file(tmp_path / "20261124-120000-3" / "results.json", [item()], finished=False)
    assert find_results_file(tmp_path, "--mlperf-baseline") == newest_done
    assert find_results_file(newest_done.parent, "x") == newest_done
    assert find_results_file(newest_done, "x") == newest_done


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ('{"a": 1}', "is not a pytest-mlperf results.json (needs schema_version and items)"),
        ('{"schema_version": 2, "items": []}', "has schema_version 2; this pytest-mlperf reads 1"),
        ('{"schema_version": 1, "items": [{"benchmark": "x"}]}', "items/0 has no 'scenario'"),
    ],
)
def test_bad_results_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(ConfigError, match=r"^--mlperf-baseline: .*bad\.json.*") as info:
        load_results(bad, "--mlperf-baseline")
    assert message in str(info.value)


def test_dirs_without_results(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'.*nowhere' does not exist"):
        find_results_file(tmp_path / "nowhere", "--mlperf-baseline")
    (tmp_path / "notes.json").write_text("{}")
    with pytest.raises(ConfigError, match="holds no results.json"):
        find_results_file(tmp_path, "--mlperf-baseline")
    results_file(tmp_path / "run" / "results.json", [item()], finished=False)
    with pytest.raises(ConfigError, match="no finished run under"):
        find_results_file(tmp_path, "--mlperf-baseline")


def test_save_baseline_only_from_a_good_run(tmp_path: Path) -> None:
    index = results_file(tmp_path / "run" / "results.json", [item()])
    target = tmp_path / "keep"
    target.mkdir()
    saved, message = save_baseline(index, [item(), item("Server", outcome="xfailed")], target)
    assert saved and message == f"baseline saved: {target / 'results.json'} (2 items)"
    assert json.loads((target / "results.json").read_text()) == json.loads(index.read_text())
    saved, message = save_baseline(
        index, [item(outcome="failed"), item(outcome="error")], tmp_path / "b.json"
    )
    assert not saved and not (tmp_path / "b.json").exists()
    assert "2 item(s) failed or errored (bert-99 Offline performance, bert-99 Offline" in message


def test_save_baseline_never_from_a_session_cut_short(tmp_path: Path) -> None:
    """Issue 26 point 3: Ctrl-C/SIGTERM/-x left items interrupted or unrun."""
    index = results_file(tmp_path / "run" / "results.json", [item()])
    target = tmp_path / "b.json"
    saved, message = save_baseline(index, [item(), item(outcome="interrupted")], target)
    assert not saved and not target.exists()
    assert message == (
        f"baseline NOT saved to {target}: 1 item(s) were interrupted; a baseline must come "
        "from a complete run"
    )
    saved, message = save_baseline(index, [item()], target, stopped="the session was interrupted")
    assert not saved and not target.exists() and "the session was interrupted" in message


# -- compare --------------------------------------------------------------------------------
def test_compare_rows_side_by_side(tmp_path: Path) -> None:
    a = results_file(
        tmp_path / "a" / "results.json",
        [item(value=100.0), item("SingleStream", 2e6), item("Server", 50.0)],
    )
    b = results_file(
        tmp_path / "b" / "results.json",
        [
            item(value=90.0),
            item("SingleStream", 1e6),
            item("Server", 51.0, system="other"),
            item("MultiStream", 3e6),
        ],
    )
    rows = compare_rows(load_results(a, "A"), load_results(b, "B"), 5.0)
    assert [r[0:3] for r in rows] == [
        ["bert-99", "Offline", "performance"],
        ["bert-99", "SingleStream", "performance"],
        ["bert-99", "Server", "performance"],
        ["bert-99", "MultiStream", "performance"],
    ]
    assert rows[0][5:] == ["100.00", "90.00", "samples/s", "-10.0 %", "worse"]
    assert rows[1][5:] == ["2.000", "1.000", "ms", "-50.0 %", "better"]
    assert rows[2][-1] == "not like-for-like: system other here, box in the baseline"
    assert rows[3][5:] == ["-", "3.000", "ms", "-", "only in B"]
    text = compare_text(a, b, 5.0)
    assert text[0].startswith("A: ") and text[-1].startswith("4 items: 1 worse, 1 better")


def test_compare_of_a_non_results_dir_names_it(tmp_path: Path) -> None:
    not_results = tmp_path / "logs"
    not_results.mkdir()
    (not_results / "x.txt").write_text("hello")
    ok = results_file(tmp_path / "ok" / "results.json", [item()])
    with pytest.raises(ConfigError, match=r"^--mlperf-compare RUN_A: '.*logs' holds no results"):
        compare_text(not_results, ok, 5.0, "--mlperf-compare")
    with pytest.raises(ConfigError, match=r"^--mlperf-compare RUN_B: .*x.txt is not JSON"):
        compare_text(ok, not_results / "x.txt", 5.0, "--mlperf-compare")


# -- thresholds with a tolerance ------------------------------------------------------------
def _thresholds(tmp_path: Path, **extra: Any) -> Path:
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "system": "box",
                "tolerance": 0.9,
                "thresholds": [
                    {"benchmark": "bert-99", "scenario": "Offline", **extra},
                    {
                        "benchmark": "bert-99",
                        "scenario": "SingleStream",
                        "expected_latency_ms": 1.8,
                    },
                ],
            }
        )
    )
    return path


def test_expected_values_become_bounds_through_the_tolerance(tmp_path: Path) -> None:
    table = ThresholdTable.load([_thresholds(tmp_path, expected_samples_per_second=1000)])
    offline = table.lookup("box", "bert-99", "Offline", "default")
    single = table.lookup("box", "bert-99", "SingleStream", "default")
    assert offline is not None and single is not None
    assert offline.min_samples_per_second == 900
    assert offline.describe() == ">= 900 samples/s (expected 1000 samples/s, tolerance 0.9)"
    assert single.max_latency_ms == 2.0
    table = ThresholdTable.load(
        [_thresholds(tmp_path, expected_samples_per_second=1000, tolerance=0.5)]
    )
    entry = table.lookup("box", "bert-99", "Offline", "default")
    assert entry is not None and entry.min_samples_per_second == 500


@pytest.mark.parametrize(
    "extra",
    [
        {"min_samples_per_second": 10, "tolerance": 0.9},  # a tolerance needs an expected value
        {"expected_samples_per_second": 10, "tolerance": 1.5},
        {"expected_samples_per_second": 10, "min_samples_per_second": 5},
        {"expected_latency_ms": 3},  # latency on a throughput scenario
    ],
)
def test_bad_threshold_entries_are_refused(tmp_path: Path, extra: dict[str, Any]) -> None:
    with pytest.raises(DataError, match=r"t.json: field thresholds/0"):
        load_thresholds(_thresholds(tmp_path, **extra))


def test_shipped_gpu_thresholds_name_their_source() -> None:
    files = {p.stem: p for p in shipped_threshold_files()}
    assert "H100-SXM-80GBx8" in files
    raw = json.loads(files["H100-SXM-80GBx8"].read_text())
    assert "MLPerf Inference v4.1, closed division" in raw["source"]
    table = ThresholdTable.load([files["H100-SXM-80GBx8"]])
    bert = table.lookup("H100-SXM-80GBx8", "bert-99", "Offline", "default")
    assert bert is not None and bert.expected is not None and bert.tolerance == 0.9
    assert bert.min_samples_per_second == pytest.approx(bert.expected * 0.9)
    assert 60_000 < bert.min_samples_per_second < 70_000  # type: ignore[operator]
    unet = table.lookup("H100-SXM-80GBx8", "3d-unet-99.9", "Offline", "high_accuracy")
    assert unet is not None and unet.note and "median of 9 results" in unet.note
    assert table.lookup("H100-SXM-80GBx8", "bert-99", "Offline", "triton") is None
    assert table.lookup("reference-cpu", "bert-99", "Offline", "default") is None
