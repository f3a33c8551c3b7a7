"""Accuracy as NVIDIA's harness reports it (metadata.json), judged against our targets.

The harness writes ``accuracy: [{name, value, threshold, pass}]`` and ``accuracy_pass``
into metadata.json. pytest-mlperf judges the value against the target in its own
benchmark data (99 % / 99.9 % of the FP32 reference), never the harness's threshold
alone, and — when the backend can name the data set — recomputes the metric from
``mlperf_log_accuracy.json`` and fails the item when the two disagree beyond rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_mlperf.backends.base import RunRequest
from pytest_mlperf.checks import FAIL, Check, Verdict, decide, ok_if
from pytest_mlperf.display import format_accuracy
from pytest_mlperf.results.loadgen import ParsedLog

#: Largest difference between the harness's and our own figure still called rounding.
AGREEMENT = {"F1": 0.01, "DICE": 1e-4}
_KIND = {"F1": "squad", "DICE": "kits"}


def harness_metrics(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """metadata.json's ``accuracy`` list by upper-cased metric name."""
    out: dict[str, dict[str, Any]] = {}
    for entry in metadata.get("accuracy") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("value"), (int, float)):
            out[str(entry.get("name", "")).upper()] = dict(entry)
    return out


def _value_check(
    request: RunRequest, value: float | None, reported: Mapping[str, Any] | None
) -> Check:
    """The harness's figure against our target (its own threshold and pass named)."""
    bench, variant = request.benchmark, request.variant
    metric, threshold = bench.accuracy_metric, variant.target
    bound = f">= {format_accuracy(threshold)} ({variant.target_ratio * 100:g} % of FP32 {format_accuracy(bench.fp32_reference)})"
    if value is None:
        return Check(metric, "missing", bound, FAIL, "metadata.json reports no " + metric)
    own = (
        ""
        if reported is None
        else f"; the harness's own threshold {reported.get('threshold')}, pass={reported.get('pass')}"
    )
    return Check(
        metric,
        format_accuracy(value),
        bound,
        ok_if(value >= threshold),
        f"ratio to FP32 reference {value / bench.fp32_reference:.4f}{own}",
    )


def _agreement_check(
    metric: str, value: float | None, recomputed: Mapping[str, Any] | None
) -> Check | None:
    """The harness's figure against ours, when we recomputed one."""
    ours = None if recomputed is None else recomputed.get("value")
    if value is None or not isinstance(ours, (int, float)):
        return None
    tolerance = AGREEMENT.get(metric.upper(), 0.0)
    agree = abs(float(ours) - value) <= tolerance
    return Check(
        "agreement",
        f"harness {format_accuracy(value)}, ours {format_accuracy(float(ours))}",
        f"within {tolerance:g}",
        ok_if(agree),
        "recomputed from mlperf_log_accuracy.json",
    )


def _accuracy_record(
    request: RunRequest,
    value: float | None,
    metadata: Mapping[str, Any],
    logged: int,
    recomputed: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The record's ``accuracy`` object for the harness's figure."""
    bench, variant = request.benchmark, request.variant
    metric, threshold = bench.accuracy_metric, variant.target
    ratio = None if value is None else round(value / bench.fp32_reference, 6)
    passed = value is not None and value >= threshold
    return {
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "target_ratio": variant.target_ratio,
        "fp32_reference": bench.fp32_reference,
        "ratio": ratio,
        "accuracy_pass": passed,
        "metrics": [
            {
                "name": metric,
                "value": value,
                "threshold": threshold,
                "pass": passed,
                "fp32_reference": bench.fp32_reference,
                "ratio": ratio,
            }
        ],
        "precision": None,
        "reference_source": "benchmark data (published MLPerf target); value from the harness's metadata.json",
        "kind": _KIND.get(metric.upper(), "squad"),
        "dataset": "scored by the harness",
        "samples": logged,
        "logged": logged,
        "scored": 0,
        "missing": 0,
        "duplicates": 0,
        "malformed": 0,
        "unknown": 0,
        "source": "harness",
        "harness": {
            "accuracy": metadata.get("accuracy"),
            "accuracy_pass": metadata.get("accuracy_pass"),
        },
        "recomputed": recomputed,
    }


def assess_harness_accuracy(
    request: RunRequest,
    parsed: ParsedLog | None,
    metadata: Mapping[str, Any],
    log_dir: Path,
    recomputed: Mapping[str, Any] | None,
) -> tuple[Verdict, dict[str, Any], str]:
    """(verdict, the record's ``accuracy`` object, threshold text) from the harness's figures.

    ``recomputed``: the ``accuracy`` object our own scoring produced, or None.
    """
    from pytest_mlperf.accuracy.reader import count_entries
    from pytest_mlperf.results.loadgen import ACCURACY

    metric = request.benchmark.accuracy_metric
    reported = harness_metrics(metadata).get(metric.upper())
    value = float(reported["value"]) if reported else None
    checks: list[Check] = []
    if parsed is not None and parsed.errors:
        checks.append(Check("loadgen", "errors", "no errors", FAIL, "; ".join(parsed.errors)))
    checks.append(_value_check(request, value, reported))
    agreement = _agreement_check(metric, value, recomputed)
    if agreement is not None:
        checks.append(agreement)
    log = log_dir / ACCURACY
    logged = count_entries(log) if log.is_file() else 0
    record = _accuracy_record(request, value, metadata, logged, recomputed)
    return (
        decide(checks),
        record,
        f"{metric} >= {format_accuracy(request.variant.target)}",
    )
