"""The display module: every table's figures and words, spelled one way."""

from __future__ import annotations

import pytest

from pytest_mlperf.checks import Outcome
from pytest_mlperf.display import (
    check_word,
    display_unit,
    figure_text,
    format_accuracy,
    format_metric,
    latency_text,
    ms_text,
    ns_to_ms,
    outcome_word,
)


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (12_345_678, "ns", "12.346 ms"),
        (250.126, "samples/s", "250.13 samples/s"),
        (3.0, None, "3.00"),
        (None, "ns", "-"),
    ],
)
def test_a_metric_is_shown_in_ms_or_its_own_unit(
    value: float | None, unit: str | None, shown: str
) -> None:
    assert format_metric(value, unit) == shown


def test_ns_latencies_are_shown_in_ms_everywhere() -> None:
    assert ns_to_ms(2_500_000) == 2.5
    assert ms_text(2_500_000) == "2.500" and latency_text(2_500_000) == "2.500 ms"
    assert figure_text(2_500_000, "ns") == "2.500" and figure_text(2.5, "qps") == "2.50"
    assert display_unit("ns") == (1e6, "ms")
    assert display_unit("samples/s") == (1.0, "samples/s") and display_unit(None) == (1.0, "")


def test_accuracy_percentages_and_fractions() -> None:
    assert format_accuracy(90.87414) == "90.874" and format_accuracy(0.8599987) == "0.86000"
    assert format_accuracy(None) == "-"


def test_outcome_and_check_words() -> None:
    assert [outcome_word(o) for o in (Outcome.PASSED, Outcome.XFAILED)] == ["PASSED", "XFAILED"]
    assert outcome_word("failed") == "FAILED"
    assert check_word({"passed": True, "skipped": False}) == "ok"
    assert check_word({"passed": False}) == "FAIL"
    assert check_word({"passed": True, "skipped": True}) == "skip"
