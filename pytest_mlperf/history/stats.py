"""One new value against the distribution of its history: the statistics, no I/O.

Values are compared on a log scale (a change is a ratio). With the history's ``n`` values
(log mean ``m``, sample standard deviation ``s``), a new value ``x`` is one draw from the
same distribution when ``t = (log x - m) / (s * sqrt(1 + 1/n))`` follows Student's t with
``n - 1`` degrees of freedom (the prediction interval of one new observation). A change
is claimed only when both hold:

- it is **significant**: the one-sided p-value of ``t`` in the direction of the change is
  below the significance (default 0.001), and
- it is **large**: beyond the tolerance (the minimum effect, default 5 %).

Below ``min_samples`` history values nothing is claimed: *inconclusive: history has k of
m*. The smallest change the history's noise lets the test see, ``t_crit * s *
sqrt(1 + 1/n)`` on the log scale, is reported as *can detect >= X % here*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

REGRESSED, IMPROVED, UNCHANGED, INCONCLUSIVE = "regressed", "improved", "unchanged", "inconclusive"
DEFAULT_SIGNIFICANCE = 0.001
DEFAULT_WINDOW = 10
DEFAULT_MIN_SAMPLES = 5
#: a history with no spread at all still has this much (log scale): no division by zero
_FLOOR = 1e-9


@dataclass(frozen=True)
class Judgement:
    """The outcome of one value against its history."""

    status: str
    value: float
    n: int
    min_samples: int
    tolerance_pct: float
    significance: float
    #: the history's centre (geometric mean); None when the history is empty
    center: float | None = None
    #: (value - centre) / centre x 100
    delta_pct: float | None = None
    #: the history's spread: sample standard deviation of the logs x 100 (about the CV)
    noise_pct: float | None = None
    #: the smallest worsening the test can tell from the history's noise, in percent
    detectable_pct: float | None = None
    p_value: float | None = None
    #: the value beyond which the item is judged regressed (both rules together)
    bound: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready figures (rounded)."""

        def r(v: float | None, d: int = 3) -> float | None:
            return None if v is None else round(v, d)

        return {
            "status": self.status,
            "value": self.value,
            "n": self.n,
            "min_samples": self.min_samples,
            "tolerance_pct": self.tolerance_pct,
            "significance": self.significance,
            "center": self.center,
            "delta_pct": r(self.delta_pct),
            "noise_pct": r(self.noise_pct),
            "detectable_pct": r(self.detectable_pct),
            "p_value": None if self.p_value is None else float(f"{self.p_value:.3g}"),
            "bound": self.bound,
            "reason": self.reason,
        }


def judge(
    value: float,
    history: Sequence[float],
    higher_is_better: bool,
    tolerance_pct: float,
    *,
    significance: float = DEFAULT_SIGNIFICANCE,
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> Judgement:
    """Judge ``value`` (> 0) against ``history`` (positive values, any order)."""
    values = [float(v) for v in history if v is not None and v > 0]
    n = len(values)
    base = Judgement(
        INCONCLUSIVE, value, n, min_samples, tolerance_pct, significance, reason="inconclusive"
    )
    if n == 0:
        return _replace(base, reason=f"inconclusive: history has 0 of {min_samples}")
    logs = [math.log(v) for v in values]
    mean = sum(logs) / n
    center = math.exp(mean)
    delta_pct = (value / center - 1.0) * 100.0
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1)) if n > 1 else 0.0
    if n < min_samples:
        return _replace(
            base,
            center=center,
            delta_pct=delta_pct,
            noise_pct=sd * 100.0 if n > 1 else None,
            reason=(
                f"inconclusive: history has {n} of {min_samples} comparable good records "
                f"({delta_pct:+.1f} % against their mean {center:.6g})"
            ),
        )
    test = _t_test(value, mean, sd, n, higher_is_better, tolerance_pct, significance)
    noise = sd * 100.0
    status, reason = _decision(delta_pct, test, n, noise, significance, tolerance_pct)
    return Judgement(
        status,
        value,
        n,
        min_samples,
        tolerance_pct,
        significance,
        center=center,
        delta_pct=delta_pct,
        noise_pct=noise,
        detectable_pct=test.detectable,
        p_value=test.p_value,
        bound=test.bound,
        reason=reason,
    )


class _Test(NamedTuple):
    """The t-test's answer: its p-value, the side of the change, what it can detect, the
    bound a value must pass (the test's or the tolerance's, the further)."""

    p_value: float
    worse: bool
    detectable: float
    bound: float


def _t_test(
    value: float,
    mean: float,
    sd: float,
    n: int,
    higher_is_better: bool,
    tolerance_pct: float,
    significance: float,
) -> _Test:
    """One-sided t-test of log(``value``) against the history's logs (``mean``, ``sd``)."""
    from scipy import stats as _scipy_stats  # here: the plugin loads without scipy's import

    center = math.exp(mean)
    se = max(sd, _FLOOR) * math.sqrt(1.0 + 1.0 / n)
    df = n - 1
    t_crit = float(_scipy_stats.t.ppf(1.0 - significance, df))
    x = math.log(value)
    t_stat = (x - mean) / se
    worse = t_stat < 0 if higher_is_better else t_stat > 0
    p_value = float(_scipy_stats.t.sf(abs(t_stat), df))
    if higher_is_better:
        detectable = (1.0 - math.exp(-t_crit * se)) * 100.0
        bound = min(math.exp(mean - t_crit * se), center * (1 - tolerance_pct / 100.0))
    else:
        detectable = (math.exp(t_crit * se) - 1.0) * 100.0
        bound = max(math.exp(mean + t_crit * se), center * (1 + tolerance_pct / 100.0))
    return _Test(p_value, worse, detectable, bound)


def _decision(
    delta_pct: float, test: _Test, n: int, noise: float, significance: float, tolerance_pct: float
) -> tuple[str, str]:
    """(status, reason): a change is claimed only when significant *and* beyond the tolerance."""
    significant = test.p_value < significance
    large = abs(delta_pct) > tolerance_pct
    figures = (
        f"{delta_pct:+.1f} % against the mean of the last {n} (noise {noise:.1f} %, "
        f"p = {test.p_value:.2g}, significance {significance:g}, tolerance {tolerance_pct:g} %; "
        f"can detect >= {test.detectable:.1f} % here)"
    )
    if significant and large:
        word = "regressed" if test.worse else "improved"
        return (REGRESSED if test.worse else IMPROVED), f"{word} {abs(delta_pct):.1f} %: {figures}"
    why = "within the tolerance" if not large else "within the history's noise"
    return UNCHANGED, f"unchanged ({why}): {figures}"


def _replace(j: Judgement, **changes: object) -> Judgement:
    from dataclasses import replace

    return replace(j, **changes)  # type: ignore[arg-type]
