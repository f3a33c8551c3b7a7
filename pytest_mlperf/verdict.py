"""Pass/fail rules: validity (with the shortened-run rule), thresholds, accuracy targets.

Backends never judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_mlperf.checks import FAIL, Check, Outcome, Verdict, decide, ok_if
from pytest_mlperf.display import format_accuracy, format_metric
from pytest_mlperf.results.loadgen import ParsedLog
from pytest_mlperf.thresholds import Threshold

if TYPE_CHECKING:
    from pytest_mlperf.accuracy.figures import AccuracyFigures


def _validity_check(parsed: ParsedLog, fast: bool) -> Check:
    validity = parsed.result_validity
    if validity is None:
        detail = "; ".join(r.message for r in parsed.invalid_reasons) or "no result logged"
        return Check("validity", "missing", "VALID", FAIL, detail)
    if validity == "VALID":
        return Check("validity", validity, "VALID")
    excused = fast and all(r.shortened_run for r in parsed.invalid_reasons)
    messages = [r.message for r in parsed.invalid_reasons]
    if excused:
        detail = "accepted for a shortened run (--mlperf-fast): " + "; ".join(messages)
    else:
        not_excused = [r.message for r in parsed.invalid_reasons if not (fast and r.shortened_run)]
        detail = "; ".join(not_excused)
    bound = "VALID (or shortened-run reasons only)" if fast else "VALID"
    return Check("validity", validity, bound, ok_if(excused), detail)


def _threshold_check(parsed: ParsedLog, threshold: Threshold) -> Check:
    value = parsed.metric_value
    shown = format_metric(value, parsed.unit)
    if value is None:
        return Check("threshold", shown, threshold.describe(), FAIL, "no metric value logged")
    if threshold.min_samples_per_second is not None:
        ok = value >= threshold.min_samples_per_second
    else:
        assert threshold.max_latency_ms is not None
        ok = value / 1e6 <= threshold.max_latency_ms
    return Check("threshold", shown, threshold.describe(), ok_if(ok), f"from {threshold.source}")


def judge_performance(parsed: ParsedLog, fast: bool, threshold: Threshold | None) -> Verdict:
    """A performance item passes when valid (see the fast rule) and within its threshold."""
    checks = [_validity_check(parsed, fast)]
    if threshold is not None:
        checks.append(_threshold_check(parsed, threshold))
    return decide(checks)


def judge_accuracy_unevaluated(
    entries: int, why: str = "no data set to score it against"
) -> Verdict:
    """Accuracy cannot be scored (the backend names no data set): never a pass."""
    reason = f"accuracy not evaluated: the accuracy log holds {entries} responses, but {why}"
    return decide(
        [
            Check(
                "accuracy", "not evaluated", "-", FAIL, reason, gives=Outcome.XFAILED, reason=reason
            )
        ]
    )


def judge_accuracy(
    parsed: ParsedLog | None, figures: AccuracyFigures, accuracy: Mapping[str, Any]
) -> Verdict:
    """An accuracy item passes when LoadGen logged no error, every sample of the data set
    was answered exactly once, and ``accuracy_pass``: each metric with a threshold meets it.

    ``accuracy`` is the record's accuracy object (see ``accuracy_record``).
    """
    checks: list[Check] = []
    if parsed is not None and parsed.errors:
        checks.append(Check("loadgen", "errors", "no errors", FAIL, "; ".join(parsed.errors)))
    complete = figures.complete
    checks.append(
        Check(
            "responses",
            figures.coverage_text(),
            "every sample once",
            ok_if(complete),
            "; ".join(figures.problems) if not complete else f"{figures.logged} logged",
        )
    )
    for metric in accuracy["metrics"]:
        if metric["threshold"] is None:
            continue
        ratio = metric["ratio"]
        reference = metric["fp32_reference"]
        ratio_text = "-" if ratio is None else f"{ratio:.4f}"
        target_ratio = accuracy.get("target_ratio")
        share = "" if target_ratio is None else f"{target_ratio * 100:g} % of "
        checks.append(
            Check(
                metric["name"],
                format_accuracy(metric["value"]),
                f">= {format_accuracy(metric['threshold'])} ({share}FP32 {format_accuracy(reference)})",
                ok_if(bool(metric["pass"])),
                f"ratio to FP32 reference {ratio_text}"
                + (f" ({accuracy['precision']})" if accuracy.get("precision") else ""),
            )
        )
    return decide(checks)
