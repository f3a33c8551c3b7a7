"""Verdict rules: validity with the shortened-run rule, and thresholds on both sides of the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_mlperf.checks import Outcome
from pytest_mlperf.errors import DataError
from pytest_mlperf.results.loadgen import ParsedLog, Reason
from pytest_mlperf.thresholds import (
    Threshold,
    ThresholdTable,
    load_thresholds,
    shipped_threshold_files,
)
from pytest_mlperf.verdict import judge_performance


def parsed(
    validity: str, *codes: str, scenario: str = "Offline", value: float = 100.0
) -> ParsedLog:
    unit = "ns" if scenario in ("SingleStream", "MultiStream") else "samples/s"
    return ParsedLog(
        source="x",
        scenario=scenario,
        result_validity=validity,
        metric_name="m",
        metric_value=value,
        unit=unit,
        invalid_reasons=[Reason(c, c.replace("_", " ")) for c in codes],
    )


def threshold(**bound: float) -> Threshold:
    return Threshold(
        "*", "bert-99", "Offline", None, bound.get("min_sps"), bound.get("max_ms"), "t.json"
    )


@pytest.mark.parametrize(
    ("validity", "codes", "fast", "outcome"),
    [
        ("VALID", (), False, Outcome.PASSED),
        ("INVALID", ("min_duration_not_met",), False, Outcome.FAILED),
        ("INVALID", ("min_duration_not_met",), True, Outcome.PASSED),
        ("INVALID", ("min_duration_not_met", "min_queries_not_met"), True, Outcome.PASSED),
        ("INVALID", ("early_stopping_not_met",), True, Outcome.FAILED),
        ("INVALID", ("min_duration_not_met", "perf_constraints_not_met"), True, Outcome.FAILED),
        ("INVALID", ("unexplained",), True, Outcome.FAILED),
        ("INVALID", ("loadgen_error",), True, Outcome.FAILED),
    ],
)
def test_fast_mode_validity_rule(
    validity: str, codes: tuple[str, ...], fast: bool, outcome: str
) -> None:
    verdict = judge_performance(parsed(validity, *codes), fast, None)
    assert verdict.outcome == outcome
    if outcome == Outcome.FAILED:
        assert verdict.reasons and verdict.reasons[0].startswith("validity: INVALID")


def test_fast_failure_names_only_the_unexcused_reason() -> None:
    verdict = judge_performance(
        parsed("INVALID", "min_duration_not_met", "early_stopping_not_met"), True, None
    )
    assert "early stopping not met" in verdict.reasons[0]
    assert "min duration" not in verdict.reasons[0]


def test_missing_validity_fails() -> None:
    p = parsed("VALID")
    p.result_validity = None
    assert judge_performance(p, True, None).outcome == Outcome.FAILED


@pytest.mark.parametrize(
    ("value", "outcome"), [(49.9, Outcome.FAILED), (50.0, Outcome.PASSED), (50.1, Outcome.PASSED)]
)
def test_throughput_threshold_both_sides(value: float, outcome: str) -> None:
    verdict = judge_performance(parsed("VALID", value=value), False, threshold(min_sps=50))
    assert verdict.outcome == outcome
    assert verdict.checks[1].expected == ">= 50 samples/s"


@pytest.mark.parametrize(
    ("ns", "outcome"),
    [(2_000_001, Outcome.FAILED), (2_000_000, Outcome.PASSED), (1_500_000, Outcome.PASSED)],
)
def test_latency_threshold_both_sides(ns: float, outcome: str) -> None:
    verdict = judge_performance(
        parsed("VALID", scenario="SingleStream", value=ns), False, threshold(max_ms=2)
    )
    assert verdict.outcome == outcome
    assert verdict.checks[1].value == f"{ns / 1e6:.3f} ms"


def test_threshold_lookup_precedence(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped.json"
    shipped.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "system": "box",
                "thresholds": [
                    {"benchmark": "bert-99", "scenario": "Offline", "min_samples_per_second": 10},
                    {
                        "benchmark": "bert-99",
                        "scenario": "Offline",
                        "config_ver": "triton",
                        "min_samples_per_second": 20,
                    },
                ],
            }
        )
    )
    user = tmp_path / "user.json"
    user.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "system": "*",
                "thresholds": [
                    {"benchmark": "bert-99", "scenario": "Server", "min_samples_per_second": 5}
                ],
            }
        )
    )
    table = ThresholdTable.load([shipped, user])
    assert table.lookup("box", "bert-99", "Offline", "default").min_samples_per_second == 10  # type: ignore[union-attr]
    assert table.lookup("box", "bert-99", "Offline", "triton").min_samples_per_second == 20  # type: ignore[union-attr]
    assert table.lookup("other", "bert-99", "Offline", "default") is None
    assert table.lookup("other", "bert-99", "Server", "default").min_samples_per_second == 5  # type: ignore[union-attr]
    user.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "system": "*",
                "thresholds": [
                    {"benchmark": "bert-99", "scenario": "Offline", "min_samples_per_second": 99}
                ],
            }
        )
    )
    table = ThresholdTable.load([shipped, user])  # the user's file wins even when less specific
    assert table.lookup("box", "bert-99", "Offline", "triton").min_samples_per_second == 99  # type: ignore[union-attr]


def test_threshold_kind_must_match_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "system": "x",
                "thresholds": [
                    {
                        "benchmark": "bert-99",
                        "scenario": "SingleStream",
                        "min_samples_per_second": 5,
                    }
                ],
            }
        )
    )
    with pytest.raises(DataError, match=r"bad.json: field thresholds/0"):
        load_thresholds(bad)


def test_shipped_thresholds_are_valid() -> None:
    files = shipped_threshold_files()
    assert files, "the reference-cpu thresholds ship with the package"
    for path in files:
        assert load_thresholds(path)
