"""The gate: a new record judged against the last N good comparable records of its ref.

Comparable: the same item (benchmark, scenario, mode), the same fingerprint
(:mod:`.fingerprint`) and the ref being compared against (a pull request's target branch,
else the session's own). The test is :func:`.stats.judge`. The outcome is a
:class:`~pytest_mlperf.baseline.Comparison`, so the verdict, the reports and the record's
``baseline`` object treat it like a baseline comparison; its ``history`` member holds the
figures, the fingerprint, the runs judged against and what differed from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_mlperf.baseline import INCONCLUSIVE, Comparison
from pytest_mlperf.checks import SKIP, Check, Outcome, ok_if
from pytest_mlperf.display import format_metric
from pytest_mlperf.history.fingerprint import differences, fingerprint, fingerprint_id
from pytest_mlperf.history.ingest import item_key, judged_figure
from pytest_mlperf.history.settings import HistorySettings
from pytest_mlperf.history.stats import REGRESSED, judge
from pytest_mlperf.history.store import HistoryRecord, HistoryStore, open_store

#: host facts outside the fingerprint that a regression report still names when they moved
CONTEXT_FACTS = ("hostname", "python", "cpus", "memory_gib", "kernel")


@dataclass(frozen=True)
class HistoryComparison(Comparison):
    """A comparison with the history (see the module doc)."""

    history: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record's ``baseline`` object, with ``history``."""
        return {**super().to_dict(), "history": dict(self.history)}

    def check(self) -> Check:
        """The verdict line: the bound the history sets, or why it could not judge."""
        if self.status == INCONCLUSIVE or self.skipped:
            return Check(
                "history",
                format_metric(self.value, self.unit),
                "inconclusive",
                SKIP,
                self.reason,
                gives=Outcome.SKIPPED,
                reason=f"history {self.reason}",
            )
        shown = format_metric(self.value, self.unit)
        if self.delta_pct is not None:
            shown += f" ({self.delta_pct:+.1f} %)"
        op = ">=" if self.unit == "samples/s" else "<="
        n = self.history.get("n")
        bound = (
            f"{op} {format_metric(self.bound, self.unit)} (mean of {n}: "
            f"{format_metric(self.baseline_value, self.unit)})"
        )
        return Check("history", shown, bound, ok_if(self.status != REGRESSED), self.reason)


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
        details: dict[str, Any] = {
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

        def skipped(reason: str) -> HistoryComparison:
            details["n"] = len(history)
            return HistoryComparison(
                INCONCLUSIVE,
                value,
                None,
                unit,
                self.tolerance_pct,
                reason,
                source,
                compared=compared,
                history=details,
            )

        if value is None or value <= 0:
            return skipped("inconclusive: this run logged no value to judge")
        if unit not in ("samples/s", "ns"):
            return skipped(f"inconclusive: unknown metric unit {unit!r}")
        result = judge(
            value,
            [r.value for r in history if r.value is not None],
            higher,
            self.tolerance_pct,
            significance=s.significance,
            min_samples=s.min_samples,
        )
        details.update(result.to_dict())
        reason = result.reason
        if len(history) < s.min_samples:
            others = self.store.other_fingerprints(key, s.compare_ref, fid)
            if others:
                moved = differences(fp, others[0].fingerprint)
                details["differed"] = moved
                reason += (
                    f"; the newest good record of this item on {s.compare_ref} (run "
                    f"{others[0].run_id}) has another fingerprint: {'; '.join(moved)}"
                )
        elif result.status == REGRESSED:
            moved = _context(host, history[0])
            if s.commit and details["commits"] and s.commit not in details["commits"]:
                moved.insert(
                    0, f"commit: {s.commit} here, {', '.join(details['commits'][:3])} in history"
                )
            details["differed"] = moved
            reason += (
                "; differs from the history judged against: " + "; ".join(moved)
                if moved
                else "; nothing in the fingerprint or host facts differs from that history"
            )
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
