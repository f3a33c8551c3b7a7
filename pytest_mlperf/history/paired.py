"""Paired A/B statistics: per-round performance ratios, their confidence interval, and the
decision against a tolerance. Pure: numbers in, numbers and words out (no pytest, no I/O).

A round runs the baseline (A) and the candidate (B) back to back; its ratio is the
candidate's *performance* over the baseline's (throughput B/A, latency A/B), so a ratio
below 1 is a slowdown whatever the metric. Drift of the machine hits both runs of a round,
and the alternating order (AB, BA, AB, ...) cancels a steady drift over pairs of rounds.
The interval is Student's t on the log-ratios (a ratio's natural scale), transformed back.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: two-sided confidence of the interval on the mean ratio
CONFIDENCE = 0.95
PASSED, REGRESSED, INCONCLUSIVE = "passed", "regressed", "inconclusive"


def performance_ratio(baseline: float, candidate: float, higher_is_better: bool) -> float:
    """The candidate's performance over the baseline's: > 1 faster, < 1 slower."""
    if baseline <= 0 or candidate <= 0:
        raise ValueError(f"values must be positive: baseline {baseline}, candidate {candidate}")
    return candidate / baseline if higher_is_better else baseline / candidate


def t_quantile(probability: float, dof: int) -> float:
    """Student's t quantile (scipy)."""
    from scipy.stats import t

    return float(t.ppf(probability, dof))


@dataclass(frozen=True)
class PairedJudgement:
    """The rounds' ratios, their geometric mean and interval, and what they decide."""

    ratios: tuple[float, ...]
    ratio: float
    low: float
    high: float
    confidence: float
    tolerance_pct: float
    status: str
    reason: str

    @property
    def change_pct(self) -> float:
        """The mean change of the candidate's performance, in percent (+ faster)."""
        return (self.ratio - 1.0) * 100.0

    def to_dict(self) -> dict[str, object]:
        """The record's figures (``ab`` in result.json)."""
        return {
            "ratios": [round(r, 6) for r in self.ratios],
            "ratio": round(self.ratio, 6),
            "ci_low": round(self.low, 6),
            "ci_high": round(self.high, 6),
            "confidence": self.confidence,
            "tolerance_pct": self.tolerance_pct,
            "change_pct": round(self.change_pct, 3),
            "status": self.status,
            "reason": self.reason,
        }


def ratio_interval(
    ratios: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(geometric mean, low, high): the mean log-ratio ± t × s / √n, exponentiated."""
    if len(ratios) < 2:
        raise ValueError(f"a confidence interval needs at least 2 rounds, got {len(ratios)}")
    if any(r <= 0 or not math.isfinite(r) for r in ratios):
        raise ValueError(f"ratios must be positive and finite: {list(ratios)}")
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    half = t_quantile(0.5 + confidence / 2, len(logs) - 1) * statistics.stdev(logs)
    half /= math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def judge_ratios(
    ratios: Sequence[float], tolerance_pct: float, confidence: float = CONFIDENCE
) -> PairedJudgement:
    """passed: the interval lies above ``1 - tolerance`` (it excludes a regression beyond
    the tolerance); regressed: it lies wholly below; inconclusive: it straddles the bound."""
    ratio, low, high = ratio_interval(ratios, confidence)
    floor = 1.0 - tolerance_pct / 100.0
    figs = (
        f"candidate/baseline {ratio:.3f} ({(ratio - 1) * 100:+.1f} %), "
        f"{confidence * 100:g} % CI {low:.3f}-{high:.3f} over {len(ratios)} rounds, "
        f"tolerance {tolerance_pct:g} % (bound {floor:.3f})"
    )
    if low > floor:
        status, why = PASSED, f"no regression beyond the tolerance: {figs}"
    elif high < floor:
        status, why = REGRESSED, f"regressed {(1 - ratio) * 100:.1f} %: {figs}"
    else:
        status, why = (
            INCONCLUSIVE,
            f"inconclusive: the interval straddles the tolerance bound: {figs}",
        )
    return PairedJudgement(tuple(ratios), ratio, low, high, confidence, tolerance_pct, status, why)
