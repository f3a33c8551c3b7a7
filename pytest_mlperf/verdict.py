"""Pass/fail rules: validity (with the shortened-run rule), thresholds, accuracy targets.

Backends never judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_mlperf.results.loadgen import ParsedLog
from pytest_mlperf.thresholds import Threshold

if TYPE_CHECKING:
    from pytest_mlperf.accuracy.figures import AccuracyFigures

PASSED, FAILED, XFAILED = "passed", "failed", "xfailed"
#: A gate that could not be evaluated (e.g. no like-for-like baseline): not a pass.
SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One line of the verdict table."""

    name: str
    value: str
    bound: str
    passed: bool
    detail: str = ""
    skipped: bool = False


@dataclass
class Verdict:
    """The outcome of an item and the checks that decided it."""

    outcome: str
    checks: list[Check] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def from_checks(cls, checks: list[Check]) -> Verdict:
        """Failed when any check failed; each failed check becomes one reason line."""
        failed = [c for c in checks if not c.passed]
        reasons = [f"{c.name}: {c.value} (expected {c.bound}) {c.detail}".strip() for c in failed]
        return cls(FAILED if failed else PASSED, checks, reasons)

    @property
    def passed(self) -> bool:
        """True when nothing failed."""
        return self.outcome == PASSED

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "checks": [asdict(c) for c in self.checks],
        }


def format_metric(value: float | None, unit: str | None) -> str:
    """Show latencies in ms and throughputs in samples/s."""
    if value is None:
        return "-"
    if unit == "ns":
        return f"{value / 1e6:.3f} ms"
    return f"{value:.2f} {unit or ''}".strip()


def _validity_check(parsed: ParsedLog, fast: bool) -> Check:
    validity = parsed.result_validity
    if validity is None:
        detail = "; ".join(r.message for r in parsed.invalid_reasons) or "no result logged"
        return Check("validity", "missing", "VALID", False, detail)
    if validity == "VALID":
        return Check("validity", validity, "VALID", True)
    excused = fast and all(r.shortened_run for r in parsed.invalid_reasons)
    messages = [r.message for r in parsed.invalid_reasons]
    if excused:
        detail = "accepted for a shortened run (--mlperf-fast): " + "; ".join(messages)
    else:
        not_excused = [r.message for r in parsed.invalid_reasons if not (fast and r.shortened_run)]
        detail = "; ".join(not_excused)
    bound = "VALID (or shortened-run reasons only)" if fast else "VALID"
    return Check("validity", validity, bound, excused, detail)


def _threshold_check(parsed: ParsedLog, threshold: Threshold) -> Check:
    value = parsed.metric_value
    shown = format_metric(value, parsed.unit)
    if value is None:
        return Check("threshold", shown, threshold.describe(), False, "no metric value logged")
    if threshold.min_samples_per_second is not None:
        ok = value >= threshold.min_samples_per_second
    else:
        assert threshold.max_latency_ms is not None
        ok = value / 1e6 <= threshold.max_latency_ms
    return Check("threshold", shown, threshold.describe(), ok, f"from {threshold.source}")


def judge_performance(parsed: ParsedLog, fast: bool, threshold: Threshold | None) -> Verdict:
    """A performance item passes when valid (see the fast rule) and within its threshold."""
    checks = [_validity_check(parsed, fast)]
    if threshold is not None:
        checks.append(_threshold_check(parsed, threshold))
    return Verdict.from_checks(checks)


def judge_accuracy_unevaluated(
    entries: int, why: str = "no data set to score it against"
) -> Verdict:
    """Accuracy cannot be scored (the backend names no data set): never a pass."""
    reason = f"accuracy not evaluated: the accuracy log holds {entries} responses, but {why}"
    return Verdict(XFAILED, [Check("accuracy", "not evaluated", "-", False, reason)], [reason])


def format_accuracy(value: float | None) -> str:
    """Percent-style accuracy metrics (F1) with 3 decimals, fractions (DICE) with 5."""
    if value is None:
        return "-"
    return f"{value:.5f}" if abs(value) <= 1.0 else f"{value:.3f}"


def judge_accuracy(
    parsed: ParsedLog | None, figures: AccuracyFigures, accuracy: Mapping[str, Any]
) -> Verdict:
    """An accuracy item passes when LoadGen logged no error, every sample of the data set
    was answered exactly once, and ``accuracy_pass``: each metric with a threshold meets it.

    ``accuracy`` is the record's accuracy object (see ``accuracy_record``).
    """
    checks: list[Check] = []
    if parsed is not None and parsed.errors:
        checks.append(Check("loadgen", "errors", "no errors", False, "; ".join(parsed.errors)))
    complete = figures.complete
    checks.append(
        Check(
            "responses",
            figures.coverage_text(),
            "every sample once",
            complete,
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
                bool(metric["pass"]),
                f"ratio to FP32 reference {ratio_text}"
                + (f" ({accuracy['precision']})" if accuracy.get("precision") else ""),
            )
        )
    return Verdict.from_checks(checks)
