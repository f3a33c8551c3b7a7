"""How figures and outcomes are shown: metric and accuracy formatting, ns latencies in ms,
the outcome and check-status words.

One place for what every table, reason line and report writes, so a gate and a report
spell a figure the same way. Imports only the vocabulary (:mod:`pytest_mlperf.checks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_mlperf.checks import FAIL, OK, SKIP, STATUS_WORDS, Outcome

#: LoadGen logs latencies in ns; every table and plot shows them in ms.
NS_PER_MS = 1e6

#: The outcomes that are not a problem in a report's count (an expected failure is known).
NOT_A_PROBLEM = (Outcome.PASSED, Outcome.XFAILED)


def ns_to_ms(ns: float) -> float:
    """A LoadGen latency (ns) in ms."""
    return ns / NS_PER_MS


def display_unit(unit: str | None) -> tuple[float, str]:
    """(divisor, unit shown) for a metric's unit: ns latencies as ms, the rest as logged."""
    return (NS_PER_MS, "ms") if unit == "ns" else (1.0, unit or "")


def ms_text(ns: float) -> str:
    """A latency in ms with 3 decimals, without its unit (``12.345``)."""
    return f"{ns_to_ms(ns):.3f}"


def latency_text(ns: float) -> str:
    """A latency with its unit: ``12.345 ms``."""
    return f"{ms_text(ns)} ms"


def figure_text(value: float, unit: str | None) -> str:
    """A figure in a table column whose unit is shown apart: ms with 3 decimals, else 2."""
    return ms_text(value) if unit == "ns" else f"{value:.2f}"


def format_metric(value: float | None, unit: str | None) -> str:
    """Show latencies in ms and throughputs in samples/s."""
    if value is None:
        return "-"
    if unit == "ns":
        return latency_text(value)
    return f"{value:.2f} {unit or ''}".strip()


def format_accuracy(value: float | None) -> str:
    """Percent-style accuracy metrics (F1) with 3 decimals, fractions (DICE) with 5."""
    if value is None:
        return "-"
    return f"{value:.5f}" if abs(value) <= 1.0 else f"{value:.3f}"


def outcome_word(outcome: str) -> str:
    """An outcome as the summary tables write it: ``PASSED``, ``XFAILED``, ..."""
    return str(outcome).upper()


def check_word(check: Mapping[str, Any]) -> str:
    """A record's check line (``verdict.checks``) as a word: ``ok``, ``FAIL`` or ``skip``."""
    if check.get("skipped"):
        return STATUS_WORDS[SKIP]
    return STATUS_WORDS[OK] if check["passed"] else STATUS_WORDS[FAIL]
