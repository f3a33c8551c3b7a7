"""Pass/fail rules: validity (with the shortened-run rule) and thresholds. Backends never judge."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_mlperf.results.loadgen import ParsedLog
from pytest_mlperf.thresholds import Threshold

PASSED, FAILED, XFAILED = "passed", "failed", "xfailed"


@dataclass(frozen=True)
class Check:
    """One line of the verdict table."""

    name: str
    value: str
    bound: str
    passed: bool
    detail: str = ""


@dataclass
class Verdict:
    """The outcome of an item and the checks that decided it."""

    outcome: str
    checks: list[Check] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

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
    failed = [c for c in checks if not c.passed]
    reasons = [f"{c.name}: {c.value} (expected {c.bound}) {c.detail}".strip() for c in failed]
    return Verdict(FAILED if failed else PASSED, checks, reasons)


def judge_accuracy_unevaluated(entries: int) -> Verdict:
    """Accuracy scoring is not available: report the log, never a pass."""
    reason = (
        f"accuracy not evaluated: the accuracy log holds {entries} responses, "
        "but F1/DICE scoring is not implemented yet"
    )
    return Verdict(XFAILED, [Check("accuracy", "not evaluated", "-", False, reason)], [reason])
