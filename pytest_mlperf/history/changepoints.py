"""Change points of one item's series over the history, found with ``ruptures`` (PELT on a
least-squares cost), never a hand-written detector. Pure: numbers in, indices out.

The penalty is BIC-like, ``PENALTY_FACTOR x sigma^2 x ln(n)``, with the noise sigma estimated
robustly from the first differences (a step does not inflate it), so a shift is reported
only when it is large against the series' own point-to-point noise.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: points each segment needs at least (a single outlier is not a change)
MIN_SIZE = 3
#: the penalty's multiple of sigma^2 ln(n). Measured on Gaussian series (200 seeds): 40 points
#: of pure noise got a false change point in 21.5 % at 2 (the BIC), 5.5 % at 3, 1 % at 4, 0 at
#: 6; a step of 4 sigma after 15 points was found at its place in 93 % at 2 to 8, one of
#: 2.4 sigma in 76 % at 2, 70 % at 4, 52 % at 8. 4: few false marks on a trend page.
PENALTY_FACTOR = 4.0


@dataclass(frozen=True)
class Segment:
    """A run of points between change points: ``[start, stop)``, its mean and noise band."""

    start: int
    stop: int
    mean: float
    sigma: float

    def to_dict(self) -> dict[str, float | int]:
        """JSON form."""
        return {"start": self.start, "stop": self.stop, "mean": self.mean, "sigma": self.sigma}


def noise_sigma(values: Sequence[float]) -> float:
    """The point-to-point noise: 1.4826 x MAD of the first differences / sqrt 2."""
    if len(values) < 3:
        return statistics.pstdev(values) if len(values) > 1 else 0.0
    diffs = [b - a for a, b in zip(values, values[1:], strict=False)]
    centre = statistics.median(diffs)
    mad = statistics.median(abs(d - centre) for d in diffs)
    return 1.4826 * mad / math.sqrt(2)


def change_points(
    values: Sequence[float], min_size: int = MIN_SIZE, penalty_factor: float = PENALTY_FACTOR
) -> list[int]:
    """Indices where a new segment begins (never 0); empty for a series too short to split."""
    n = len(values)
    if n < 2 * min_size:
        return []
    sigma = noise_sigma(values)
    if sigma <= 0:  # flat differences: a change is any step at all, scaled to the level
        sigma = max(abs(statistics.fmean(values)) * 1e-6, 1e-12)
    import numpy as np
    import ruptures as rpt

    signal = np.asarray(values, dtype=float).reshape(-1, 1)
    algo = rpt.Pelt(model="l2", min_size=min_size, jump=1).fit(signal)
    ends: list[int] = algo.predict(pen=penalty_factor * sigma**2 * math.log(n))
    return [int(e) for e in ends if 0 < e < n]


def segments(values: Sequence[float], starts: Sequence[int]) -> list[Segment]:
    """The segments the change points ``starts`` cut ``values`` into, each with its mean and
    standard deviation (the noise band is mean ± 2 sigma)."""
    bounds = [0, *starts, len(values)]
    out = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        part = list(values[a:b])
        if not part:
            continue
        sigma = statistics.stdev(part) if len(part) > 1 else 0.0
        out.append(Segment(a, b, statistics.fmean(part), sigma))
    return out
