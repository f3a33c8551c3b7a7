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

    bench, variant = request.benchmark, request.variant
    metric = bench.accuracy_metric
    threshold = variant.target
    reported = harness_metrics(metadata).get(metric.upper())
    value = float(reported["value"]) if reported else None
    checks: list[Check] = []
    if parsed is not None and parsed.errors:
        checks.append(Check("loadgen", "errors", "no errors", FAIL, "; ".join(parsed.errors)))
    bound = f">= {format_accuracy(threshold)} ({variant.target_ratio * 100:g} % of FP32 {format_accuracy(bench.fp32_reference)})"
    if value is None:
        checks.append(Check(metric, "missing", bound, FAIL, "metadata.json reports no " + metric))
    else:
        own = (
            ""
            if reported is None
            else f"; the harness's own threshold {reported.get('threshold')}, pass={reported.get('pass')}"
        )
        checks.append(
            Check(
                metric,
                format_accuracy(value),
                bound,
                ok_if(value >= threshold),
                f"ratio to FP32 reference {value / bench.fp32_reference:.4f}{own}",
            )
        )
    ours = None if recomputed is None else recomputed.get("value")
    if value is not None and isinstance(ours, (int, float)):
        tolerance = AGREEMENT.get(metric.upper(), 0.0)
        agree = abs(float(ours) - value) <= tolerance
        checks.append(
            Check(
                "agreement",
                f"harness {format_accuracy(value)}, ours {format_accuracy(float(ours))}",
                f"within {tolerance:g}",
                ok_if(agree),
                "recomputed from mlperf_log_accuracy.json",
            )
        )
    log = log_dir / ACCURACY
    logged = count_entries(log) if log.is_file() else 0
    record: dict[str, Any] = {
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "target_ratio": variant.target_ratio,
        "fp32_reference": bench.fp32_reference,
        "ratio": None if value is None else round(value / bench.fp32_reference, 6),
        "accuracy_pass": value is not None and value >= threshold,
        "metrics": [
            {
                "name": metric,
                "value": value,
                "threshold": threshold,
                "pass": value is not None and value >= threshold,
                "fp32_reference": bench.fp32_reference,
                "ratio": None if value is None else round(value / bench.fp32_reference, 6),
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
    return (
        decide(checks),
        record,
        f"{metric} >= {format_accuracy(threshold)}",
    )
