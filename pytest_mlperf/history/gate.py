"""The gate: a new record judged against the last N good comparable records of its ref.

Comparable: the same item (benchmark, scenario, mode), the same fingerprint
(:mod:`.fingerprint`) and the ref being compared against (a pull request's target branch,
else the session's own). The test is :func:`.stats.judge`. The outcome is a
:class:`~pytest_mlperf.baseline.Comparison`, so the verdict, the reports and the record's
``baseline`` object treat it like a baseline comparison; its ``history`` member holds the
figures, the fingerprint, the runs judged against and what differed from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pytest_mlperf.baseline import INCONCLUSIVE, Comparison
from pytest_mlperf.checks import Check
from pytest_mlperf.display import format_metric
from pytest_mlperf.history.fingerprint import differences, fingerprint, fingerprint_id
from pytest_mlperf.history.ingest import item_key, judged_figure
from pytest_mlperf.history.settings import HistorySettings
from pytest_mlperf.history.stats import REGRESSED, Judgement, judge
from pytest_mlperf.history.store import HistoryRecord, HistoryStore, open_store

#: host facts outside the fingerprint that a regression report still names when they moved
CONTEXT_FACTS = ("hostname", "python", "cpus", "memory_gib", "kernel")


@dataclass(frozen=True)
class HistoryComparison(Comparison):
    """A comparison with the history (see the module doc)."""

    history: Mapping[str, Any] = field(default_factory=dict)
    label: ClassVar[str] = "history"

    def to_dict(self) -> dict[str, Any]:
        """The record's ``baseline`` object, with ``history``."""
        return {**super().to_dict(), "history": dict(self.history)}

    def expected(self) -> str:
        """The line's expected column: the bound the history sets, and its mean."""
        op = ">=" if self.higher_is_better else "<="
        return (
            f"{op} {format_metric(self.bound, self.unit)} (mean of {self.history.get('n')}: "
            f"{format_metric(self.baseline_value, self.unit)})"
        )

    def check(self) -> Check:
        """The verdict line: the bound the history sets, or why it could not judge."""
        if self.skipped:  # inconclusive included; the figure without a change
            shown = format_metric(self.value, self.unit)
            return self.not_judged(shown, "inconclusive", self.reason)
        return super().check()


def _context(current_host: Mapping[str, Any], base: HistoryRecord) -> list[str]:
    """Facts outside the fingerprint that differ from the newest record judged against."""
    software = ((base.record.get("provenance") or {}).get("inputs") or {}).get("software") or {}
    out = []
    for key in CONTEXT_FACTS:
        here, there = current_host.get(key), software.get(key)
        if here is not None and there is not None and here != there:
            out.append(f"{key}: {here} here, {there} in run {base.run_id}")
    return out


class HistoryGate:
    """Judges records against one store (opened on first use, kept open)."""

    def __init__(self, settings: HistorySettings, tolerance_pct: float) -> None:
        self.settings = settings
        self.tolerance_pct = tolerance_pct
        self._store: HistoryStore | None = None

    @property
    def store(self) -> HistoryStore:
        """The store (opened, and migrated, on first use)."""
        if self._store is None:
            self._store = open_store(self.settings.location)
        return self._store

    def close(self) -> None:
        """Close the store."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def judge(self, current: Mapping[str, Any], host: Mapping[str, Any]) -> HistoryComparison:
        """Judge ``current`` (the fields of a result record) measured on ``host``."""
        s = self.settings
        fp = fingerprint(current, host)
        fid = fingerprint_id(fp)
        key = item_key(current)
        value, unit, compared, higher, _samples = judged_figure(current)
        source = f"history {s.location} (ref {s.compare_ref}, fingerprint {fid})"
        history = self.store.records(key, fid, s.compare_ref, limit=s.window)
        details = self._details(fp, fid, history)
        unjudged = _why_not_judged(value, unit)
        if unjudged or value is None:
            details["n"] = len(history)
            return HistoryComparison(
                INCONCLUSIVE,
                value,
                None,
                unit,
                self.tolerance_pct,
                unjudged,
                source,
                compared=compared,
                history=details,
            )
        result = judge(
            value,
            [r.value for r in history if r.value is not None],
            higher,
            self.tolerance_pct,
            significance=s.significance,
            min_samples=s.min_samples,
        )
        details.update(result.to_dict())
        reason = result.reason + self._what_differed(result, details, history, key, host)
        what = "throughput" if higher else "latency"
        return HistoryComparison(
            result.status,
            value,
            result.center,
            unit,
            self.tolerance_pct,
            f"{what} {reason}; {source}",
            source,
            delta_pct=result.delta_pct,
            bound=result.bound,
            noise_pct=None,
            baseline_noise_pct=result.noise_pct,
            compared=compared,
            history=details,
        )

    def _details(
        self, fp: Mapping[str, Any], fid: str, history: Sequence[HistoryRecord]
    ) -> dict[str, Any]:
        """The ``history`` object's store, refs, fingerprint and the runs judged against."""
        s = self.settings
        return {
            "store": s.location,
            "ref": s.ref,
            "compare_ref": s.compare_ref,
            "fingerprint_id": fid,
            "fingerprint": fp,
            "window": s.window,
            "runs": [r.run_id for r in history],
            "commits": sorted({r.commit for r in history if r.commit}),
            "differed": [],
        }

    def _what_differed(
        self,
        result: Judgement,
        details: dict[str, Any],
        history: Sequence[HistoryRecord],
        key: str,
        host: Mapping[str, Any],
    ) -> str:
        """The reason's tail (and ``details["differed"]``): with too short a history, how
        the newest record under another fingerprint differs; for a regression, what differs
        from the history judged against."""
        s = self.settings
        if len(history) < s.min_samples:
            fid = details["fingerprint_id"]
            others = self.store.other_fingerprints(key, s.compare_ref, fid)
            if not others:
                return ""
            moved = differences(details["fingerprint"], others[0].fingerprint)
            details["differed"] = moved
            return (
                f"; the newest good record of this item on {s.compare_ref} (run "
                f"{others[0].run_id}) has another fingerprint: {'; '.join(moved)}"
            )
        if result.status != REGRESSED:
            return ""
        moved = _context(host, history[0])
        if s.commit and details["commits"] and s.commit not in details["commits"]:
            moved.insert(
                0, f"commit: {s.commit} here, {', '.join(details['commits'][:3])} in history"
            )
        details["differed"] = moved
        return (
            "; differs from the history judged against: " + "; ".join(moved)
            if moved
            else "; nothing in the fingerprint or host facts differs from that history"
        )


def _why_not_judged(value: float | None, unit: str | None) -> str:
    """Why ``value`` cannot be judged ("" when it can)."""
    if value is None or value <= 0:
        return "inconclusive: this run logged no value to judge"
    if unit not in ("samples/s", "ns"):
        return f"inconclusive: unknown metric unit {unit!r}"
    return ""
