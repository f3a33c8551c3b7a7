"""The one result parser, on logs real LoadGen writes during the test (valid and invalid)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_mlperf.backends.reference import ReferenceBackend
from pytest_mlperf.errors import ParseError
from pytest_mlperf.results.loadgen import (
    DETAIL,
    SCENARIO_METRICS,
    SUMMARY,
    parse_detail,
    parse_dir,
    parse_summary,
)
from tests.loadgen_runs import run_tiny

# Each case: scenario, overrides, expected validity, expected reason codes.
# Valid cases set no minimum duration, so machine noise cannot make them INVALID.
CASES = {
    "offline_valid": ("Offline", {"min_duration_ms": 0}, "VALID", set()),
    # a 10 s latency bound at a low rate: a busy machine cannot make it miss its constraint
    "server_valid": (
        "Server",
        {"min_duration_ms": 0, "target_qps": 50, "latency_bound_ns": 10_000_000_000},
        "VALID",
        set(),
    ),
    "singlestream_valid": ("SingleStream", {"min_duration_ms": 0}, "VALID", set()),
    "multistream_valid": ("MultiStream", {"min_duration_ms": 0}, "VALID", set()),
    # Offline issues expected_qps * min_duration samples: far too few for the duration
    "offline_short": (
        "Offline",
        {"expected_qps": 20, "min_duration_ms": 3000},
        "INVALID",
        {"min_duration_not_met"},
    ),
    # too few queries for LoadGen's early-stopping estimate of the p90 latency
    "singlestream_early_stop": (
        "SingleStream",
        {"min_query_count": 20, "min_duration_ms": 0},
        "INVALID",
        {"early_stopping_not_met"},
    ),
    # arrivals far beyond capacity with a 1 ms bound: latency constraint missed
    "server_overloaded": (
        "Server",
        {"target_qps": 20000, "latency_bound_ns": 1_000_000, "min_query_count": 500},
        "INVALID",
        {"perf_constraints_not_met"},
    ),
}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> dict[str, Path]:
    """Run every case once through real LoadGen."""
    backend = ReferenceBackend(model_cache)
    root = tmp_path_factory.mktemp("loadgen-logs")
    out = {}
    for name, (scenario, overrides, _, _) in CASES.items():
        out[name] = run_tiny(backend, root / name, scenario, overrides=overrides)
    out["accuracy"] = run_tiny(backend, root / "accuracy", "Offline", mode="accuracy")
    backend.close()
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_parse_real_logs(logs: dict[str, Path], case: str) -> None:
    scenario, _, validity, reasons = CASES[case]
    parsed = parse_dir(logs[case])
    assert parsed.scenario == scenario
    assert parsed.mode == "performance"
    assert parsed.result_validity == validity
    assert parsed.metric_name == SCENARIO_METRICS[scenario]
    assert parsed.metric_value is not None and parsed.metric_value > 0
    assert parsed.metric_value == parsed.loadgen[SCENARIO_METRICS[scenario]]
    codes = {r.code for r in parsed.invalid_reasons}
    assert reasons <= codes
    if validity == "VALID":
        assert codes == set()
    assert parsed.source.endswith(DETAIL)


def test_loadgen_keys_kept_exactly_as_logged(logs: dict[str, Path]) -> None:
    parsed = parse_dir(logs["server_valid"])
    logged = {}
    for line in (logs["server_valid"] / DETAIL).read_text().splitlines():
        record = json.loads(line.split(":::MLLOG", 1)[1])
        if record["key"].startswith(("result_", "effective_")):
            logged[record["key"]] = record["value"]
    assert parsed.loadgen == {**logged, "early_stopping_met": parsed.early_stopping_met}
    assert isinstance(parsed.loadgen["effective_target_qps"], (int, float))


def test_summary_fallback_agrees_with_detail(logs: dict[str, Path], tmp_path: Path) -> None:
    for case in ("singlestream_valid", "offline_short", "server_valid"):
        detail = parse_detail(logs[case] / DETAIL)
        summary = parse_summary(logs[case] / SUMMARY)
        assert summary.result_validity == detail.result_validity
        assert summary.metric_name == detail.metric_name
        assert summary.metric_value == pytest.approx(detail.metric_value, rel=1e-3)
        assert {r.code for r in summary.invalid_reasons} == {r.code for r in detail.invalid_reasons}
    # a directory with only the summary parses through the fallback
    only = tmp_path / "only-summary"
    only.mkdir()
    (only / SUMMARY).write_bytes((logs["offline_short"] / SUMMARY).read_bytes())
    parsed = parse_dir(only)
    assert parsed.source.endswith(SUMMARY) and parsed.result_validity == "INVALID"


def test_truncated_detail_log_is_unreadable(logs: dict[str, Path], tmp_path: Path) -> None:
    text = (logs["offline_short"] / DETAIL).read_bytes()
    cut = text.index(b'"result_validity"')
    broken = tmp_path / "cut"
    broken.mkdir()
    (broken / DETAIL).write_bytes(text[: cut - 20] + b"\xff\xfe garbage")
    with pytest.raises(ParseError, match=r"mlperf_log_detail.txt: line \d+: unreadable"):
        parse_dir(broken)
    # a complete summary next to it does not make the damaged detail log readable
    (broken / SUMMARY).write_bytes((logs["offline_short"] / SUMMARY).read_bytes())
    with pytest.raises(ParseError, match="unreadable MLLOG record"):
        parse_dir(broken)


def test_empty_and_missing_logs(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="no LoadGen logs in"):
        parse_dir(tmp_path)
    (tmp_path / DETAIL).write_text("")
    with pytest.raises(ParseError, match="no MLLOG records"):
        parse_dir(tmp_path)


def test_accuracy_run(logs: dict[str, Path]) -> None:
    parsed = parse_dir(logs["accuracy"])
    assert parsed.mode == "accuracy"
    entries = json.loads((logs["accuracy"] / "mlperf_log_accuracy.json").read_text())
    assert len(entries) == 64  # every sample of the tiny QSL
    assert len(bytes.fromhex(entries[0]["data"])) == 32 * 2 * 4  # float32 [seq, 2]


def test_cli_parse(logs: dict[str, Path], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_mlperf.cli", "parse", str(logs["singlestream_early_stop"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["result_validity"] == "INVALID"
    assert record["metric"]["name"] == "result_90.00_percentile_latency_ns"
    assert record["invalid_reasons"][0]["code"] == "early_stopping_not_met"
    bad = subprocess.run(
        [sys.executable, "-m", "pytest_mlperf.cli", "parse", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert (
        bad.stderr.strip()
        == f"pytest-mlperf parse: no LoadGen logs in {tmp_path}: expected {DETAIL} or {SUMMARY}"
    )
