"""Baselines: compare each item's metric with a previous run's ``results.json``.

A comparison is made only between like runs: the same benchmark, scenario and mode (the
key an item is looked up by) and the same config_ver, system, shortened-run flag and
metric. Anything else is *skipped* with the reason, never passed. Throughput (Offline,
Server) regresses when it drops below ``baseline x (1 - tolerance)``; latency
(SingleStream p90, MultiStream p99) when it rises above ``baseline x (1 + tolerance)``.

No pytest here: the session and the ``compare`` command use these functions.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from pytest_mlperf.checks import SKIP, Check, Outcome, Verdict, decide, ok_if
from pytest_mlperf.display import format_metric
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.history.results_file import (
    SERVER_LATENCY_KEY,
    ResultsFile,
    mismatches,
    same_server_target,
)

DEFAULT_TOLERANCE_PCT = 5.0
REGRESSED, IMPROVED, UNCHANGED = "regressed", "improved", "unchanged"
#: A comparison that could not be made (a comparison status, not an item outcome).
SKIPPED = "skipped"
#: the change and the noise of the runs cannot tell a regression from chance: a skip
INCONCLUSIVE = "inconclusive"
#: with noise above the tolerance, only a change beyond this many times the noise is claimed:
#: between sessions a machine drifts by more than one session's repeats spread
RESOLUTION_FACTOR = 2.0
_PERCENT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%?\s*$")


def parse_tolerance(value: str, option: str = "--mlperf-tolerance") -> float:
    """A tolerance in percent: ``5``, ``5%`` or ``2.5 %``; 0 <= value < 100."""
    match = _PERCENT.match(value)
    pct = float(match.group(1)) if match else -1.0
    if not 0 <= pct < 100:
        raise ConfigError(
            f"{option}: {value!r} is not a percentage from 0 to below 100 (e.g. 5 or 5%)"
        )
    return pct


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one metric with its baseline."""

    status: str  # regressed | improved | unchanged | skipped
    value: float | None
    baseline_value: float | None
    unit: str | None
    tolerance_pct: float
    reason: str
    source: str
    delta_pct: float | None = None
    bound: float | None = None
    #: relative spread (max-min)/median in percent of each side's repeats; 0 for one run
    noise_pct: float | None = None
    baseline_noise_pct: float | None = None
    #: what was compared: the scenario metric, or (pinned Server target) its p99 latency
    compared: str | None = None
    #: the verdict line's name
    label: ClassVar[str] = "baseline"

    @property
    def skipped(self) -> bool:
        """True when no comparison could be made (inconclusive included)."""
        return self.status in (SKIPPED, INCONCLUSIVE)

    def to_dict(self) -> dict[str, Any]:
        """The record's ``baseline`` object."""
        return {
            "status": self.status,
            "value": self.value,
            "baseline_value": self.baseline_value,
            "unit": self.unit,
            "delta_pct": None if self.delta_pct is None else round(self.delta_pct, 3),
            "tolerance_pct": self.tolerance_pct,
            "bound": self.bound,
            "reason": self.reason,
            "source": self.source,
            "noise_pct": None if self.noise_pct is None else round(self.noise_pct, 3),
            "baseline_noise_pct": None
            if self.baseline_noise_pct is None
            else round(self.baseline_noise_pct, 3),
            "compared": self.compared,
        }

    @property
    def higher_is_better(self) -> bool:
        """Throughput (samples/s) is judged from below, latency from above."""
        return self.unit == "samples/s"

    def shown(self) -> str:
        """The line's value: the judged figure, and its change in percent when known."""
        shown = format_metric(self.value, self.unit)
        return shown if self.delta_pct is None else f"{shown} ({self.delta_pct:+.1f} %)"

    def expected(self) -> str:
        """The line's expected column: the bound the figure had to meet, and where from."""
        op, sign = (">=", "-") if self.higher_is_better else ("<=", "+")
        return (
            f"{op} {format_metric(self.bound, self.unit)} (baseline "
            f"{format_metric(self.baseline_value, self.unit)} {sign} {self.tolerance_pct:g} %)"
        )

    def not_judged(self, shown: str, expected: str, why: str) -> Check:
        """A skipped line (``why`` follows the label in the item's reason)."""
        return Check(
            self.label,
            shown,
            expected,
            SKIP,
            self.reason,
            gives=Outcome.SKIPPED,
            reason=f"{self.label} {why}",
        )

    def check(self) -> Check:
        """The verdict line for this comparison."""
        if self.status == INCONCLUSIVE:
            return self.not_judged(self.shown(), "inconclusive", self.reason)
        if self.skipped:
            return self.not_judged("not compared", "-", f"not compared: {self.reason}")
        ok = ok_if(self.status != REGRESSED)
        return Check(self.label, self.shown(), self.expected(), ok, self.reason)


@dataclass(frozen=True)
class Figures:
    """One side of a comparison: the judged value and the range of its repeats."""

    value: float | None
    low: float | None
    high: float | None

    @property
    def noise_pct(self) -> float:
        """(max - min) / value in percent; 0 for a single run."""
        if self.value is None or self.low is None or self.high is None or not self.value:
            return 0.0
        return (self.high - self.low) / abs(self.value) * 100.0


def figures(record: Mapping[str, Any], latency_key: str | None = None) -> Figures:
    """The record's metric (or ``latency_key`` of ``loadgen``): median and range of repeats."""
    repeat = record.get("repeat") or None
    if latency_key is not None:
        runs = [r.get("p99_latency_ns") for r in (repeat or {}).get("runs") or []]
        values = [float(v) for v in runs if isinstance(v, (int, float))]
        if len(values) > 1:
            return Figures(statistics.median(values), min(values), max(values))
        single = (record.get("loadgen") or {}).get(latency_key)
        v = float(single) if isinstance(single, (int, float)) else None
        return Figures(v, v, v)
    if repeat and repeat.get("median") is not None:
        return Figures(float(repeat["median"]), repeat.get("min"), repeat.get("max"))
    value = record["metric"]["value"]
    v = None if value is None else float(value)
    return Figures(v, v, v)


class _Placing(NamedTuple):
    """Where a run lies against the baseline's tolerance band and the baseline's range."""

    #: the tolerance's bound on the worse side
    bound: float
    #: beyond the bound
    worse: bool
    #: beyond the tolerance on the better side
    better: bool
    #: the two runs' ranges do not overlap, this run's on the worse side
    separated: bool
    #: ... on the better side
    ahead: bool


def _placing(cur: Figures, base: Figures, higher_is_better: bool, tol: float) -> _Placing:
    assert cur.value is not None and base.value is not None
    cur_lo, cur_hi = cur.low if cur.low is not None else cur.value, cur.high or cur.value
    base_lo, base_hi = base.low if base.low is not None else base.value, base.high or base.value
    if higher_is_better:
        low, high = base.value * (1 - tol), base.value * (1 + tol)
        return _Placing(low, cur.value < low, cur.value > high, cur_hi < base_lo, cur_lo > base_hi)
    high, low = base.value * (1 + tol), base.value * (1 - tol)
    return _Placing(high, cur.value > high, cur.value < low, cur_lo > base_hi, cur_hi < base_lo)


def _beyond_tolerance(
    delta: float, noise: float, at: _Placing, figs: str, tolerance_pct: float
) -> tuple[str, str]:
    """Noise above the tolerance: only a change beyond RESOLUTION_FACTOR x the noise counts."""
    beyond = abs(delta) > RESOLUTION_FACTOR * noise
    if beyond and at.worse and at.separated:
        return (
            REGRESSED,
            f"regressed {abs(delta):.1f} %, more than {RESOLUTION_FACTOR:g} x the noise "
            f"of the runs ({figs})",
        )
    if beyond and at.better and at.ahead:
        why = f"improved {abs(delta):.1f} %, more than {RESOLUTION_FACTOR:g} x the noise"
        return IMPROVED, f"{why} ({figs})"
    return (
        INCONCLUSIVE,
        f"inconclusive: the noise exceeds the tolerance and the change is not beyond "
        f"{RESOLUTION_FACTOR:g} x the noise ({figs})",
    )


def _within_tolerance(
    delta: float, noise: float, at: _Placing, figs: str, tolerance_pct: float
) -> tuple[str, str]:
    """Noise within the tolerance: the tolerance decides, unless the ranges overlap."""
    # single runs on both sides (no measured noise): the plain tolerance words
    noisy = f" and outside the noise of both runs ({figs})" if noise > 0 else ""
    if at.worse and at.separated:
        return (
            REGRESSED,
            f"regressed {abs(delta):.1f} % beyond the {tolerance_pct:g} % tolerance{noisy}",
        )
    if at.worse:
        return (
            INCONCLUSIVE,
            f"inconclusive: beyond the tolerance but within the noise of the runs ({figs})",
        )
    extra = f" ({figs})" if noise > 0 else ""
    if at.better:
        return IMPROVED, f"improved {abs(delta):.1f} % over the baseline{extra}"
    return UNCHANGED, f"within ±{tolerance_pct:g} % of the baseline ({delta:+.1f} %){extra}"


def judge_change(
    cur: Figures, base: Figures, higher_is_better: bool, tolerance_pct: float
) -> tuple[str, float, float, str]:
    """The noise-aware rule, on figures alone: (status, delta %, bound, why).

    The noise is the wider relative range (max - min) / median of the two runs.
    regressed: worse by more than the tolerance, the two runs' ranges do not overlap, and,
    when the noise exceeds the tolerance, worse by more than ``RESOLUTION_FACTOR`` times
    the noise (a noisy machine can still show a collapse, not a change of its own drift's
    size); inconclusive: otherwise when the noise exceeds the tolerance, or the change
    exceeds it but the ranges overlap; improved/unchanged otherwise.
    """
    assert cur.value is not None and base.value is not None
    delta = (cur.value - base.value) / base.value * 100.0
    at = _placing(cur, base, higher_is_better, tolerance_pct / 100.0)
    noise = max(cur.noise_pct, base.noise_pct)
    figs = (
        f"{delta:+.1f} %, noise {cur.noise_pct:.1f} % here and {base.noise_pct:.1f} % "
        f"in the baseline, tolerance {tolerance_pct:g} %"
    )
    rule = _beyond_tolerance if noise > tolerance_pct else _within_tolerance
    status, why = rule(delta, noise, at, figs, tolerance_pct)
    return status, delta, at.bound, why


def _why_not_judged(cur: Figures, ref: Figures, unit: str | None, base: Mapping[str, Any]) -> str:
    """Why the figures cannot be judged ("" when they can)."""
    if ref.value is None or ref.value <= 0:
        outcome = base.get("verdict", {}).get("outcome", "?")
        return f"the baseline run has no metric value (its verdict: {outcome})"
    if cur.value is None:
        return "this run logged no metric value"
    if unit not in ("samples/s", "ns"):
        return f"unknown metric unit {unit!r}"
    return ""


def compare_pair(
    current: Mapping[str, Any], base: Mapping[str, Any], tolerance_pct: float, source: str
) -> Comparison:
    """Compare the metric of ``current`` with that of ``base`` (records of one item).

    Server runs at the same (pinned) target QPS compare validity and p99 latency instead
    of the metric, which is then the echo of the target.
    """
    metric = current["metric"]
    value, unit = metric["value"], metric["unit"]
    base_value = base["metric"]["value"]

    def skip(reason: str) -> Comparison:
        return Comparison(SKIPPED, value, base_value, unit, tolerance_pct, reason, source)

    differ = mismatches(current, base)
    if differ:
        return skip("not like-for-like: " + "; ".join(differ))
    if same_server_target(current, base):
        target = base["settings"]["target_qps"]
        compared = f"{SERVER_LATENCY_KEY} at target_qps {target:g}"
        if base.get("result_validity") == "VALID" and current.get("result_validity") == "INVALID":
            why = f"INVALID at the baseline's target_qps {target:g}, which was VALID there"
            return Comparison(
                REGRESSED,
                value,
                base_value,
                unit,
                tolerance_pct,
                f"{why}; baseline {source}",
                source,
                compared=compared,
            )
        cur, ref = figures(current, SERVER_LATENCY_KEY), figures(base, SERVER_LATENCY_KEY)
        unit, what = "ns", "Server p99 latency at the same target"
    else:
        compared, cur, ref = metric["name"], figures(current), figures(base)
        what = "throughput" if unit == "samples/s" else "latency"
    unjudged = _why_not_judged(cur, ref, unit, base)
    if unjudged:
        return skip(unjudged)
    status, delta, bound, why = judge_change(cur, ref, unit == "samples/s", tolerance_pct)
    return Comparison(
        status,
        cur.value,
        ref.value,
        unit,
        tolerance_pct,
        f"{what} {why}; baseline {source}",
        source,
        delta_pct=delta,
        bound=bound,
        noise_pct=cur.noise_pct,
        baseline_noise_pct=ref.noise_pct,
        compared=compared,
    )


def compare_to_baseline(
    current: Mapping[str, Any], baseline: ResultsFile, tolerance_pct: float
) -> Comparison:
    """Compare an item's record (needs the keys of a result record) with the baseline run."""
    source = baseline.describe()
    base = baseline.find(current["benchmark"], current["scenario"], current["mode"])
    if base is None:
        metric = current["metric"]
        return Comparison(
            SKIPPED,
            metric["value"],
            None,
            metric["unit"],
            tolerance_pct,
            f"no {current['benchmark']} {current['scenario']} {current['mode']} item in the "
            f"baseline {source}",
            source,
        )
    return compare_pair(current, base, tolerance_pct, source)


def with_baseline(verdict: Verdict, comparison: Comparison) -> Verdict:
    """Add the baseline line to a verdict.

    A regression fails the item. A comparison that could not be made turns an otherwise
    passing item into a skipped one (with the reason): the gate was not evaluated, so it
    is not reported as passed.
    """
    return decide([comparison.check()], prior=verdict)
