"""Tune LoadGen targets to this machine (reported, never hidden).

Offline and the stream scenarios: the model is timed directly for about a second. Server:
the target is *searched*: short LoadGen probe runs at targets on a geometric grid below the
timed throughput (anchored at 1 QPS, so it does not move with the timing), bisected for the highest one whose p99 latency stays under a margin of
the latency bound; the target run then uses a grid point below it. LoadGen's own
``TestMode.FindPeakPerformance`` is not used: it searches at full run length, stops at the
edge (no margin: a rerun there is VALID about half the time) and reports the peak only as
text in its detail log.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_mlperf.backends.reference.sut import Engine

#: seconds of timed model calls per calibration (after one warm-up call)
BUDGET_S = 1.0


@dataclass(frozen=True)
class SearchSettings:
    """How the Server search probes; benchmark data ``reference.server_search`` overrides."""

    probe_ms: int = 600
    probe_queries: int = 64
    step: float = 0.93
    latency_margin: float = 0.6
    backoff_steps: int = 2
    #: most probe runs; None: as many as the grid needs to find its best passing point
    #: from ``start`` wherever that is (9 for the default grid; 8 ended a step short)
    probes: int | None = None
    #: the first probe's grid point (4 steps below the ceiling: 70-75 % of the timed
    #: throughput, which leaves out the SUT's and LoadGen's own overhead)
    start: int = 4
    #: grid points: the lowest is ceiling x step**(points-1) (about 3 % of it)
    points: int = 48

    @property
    def budget(self) -> int:
        """The probe budget: ``probes``, or (None) the worst case of the gallop and bisection."""
        return self.probes if self.probes is not None else needed_probes(self.start, self.points)

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> SearchSettings:
        """From ``reference.server_search`` (validated by the benchmark schema)."""
        return cls(**{k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Probe:
    """One probe run's outcome."""

    target_qps: float
    p99_ns: float | None
    completed_qps: float | None
    passed: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the record's calibration.search.probes."""
        return {
            "target_qps": round(self.target_qps, 3),
            "p99_ms": None if self.p99_ns is None else round(self.p99_ns / 1e6, 3),
            "completed_qps": None if self.completed_qps is None else round(self.completed_qps, 2),
            "passed": self.passed,
            "why": self.why,
        }


def judge_probe(
    target_qps: float,
    p99_ns: float | None,
    completed_qps: float | None,
    bound_ns: float,
    margin: float,
    errors: int = 0,
) -> Probe:
    """A probe passes when it logged no error, p99 <= margin x bound and it kept up."""
    limit = margin * bound_ns
    if errors:
        return Probe(target_qps, p99_ns, completed_qps, False, f"{errors} LoadGen error(s)")
    if p99_ns is None:
        return Probe(target_qps, p99_ns, completed_qps, False, "no p99 latency logged")
    if p99_ns > limit:
        return Probe(
            target_qps,
            p99_ns,
            completed_qps,
            False,
            f"p99 {p99_ns / 1e6:.1f} ms > {margin:g} x {bound_ns / 1e6:g} ms",
        )
    if completed_qps is not None and completed_qps < 0.9 * target_qps:
        return Probe(
            target_qps, p99_ns, completed_qps, False, f"completed only {completed_qps:.1f}/s"
        )
    return Probe(
        target_qps,
        p99_ns,
        completed_qps,
        True,
        f"p99 {p99_ns / 1e6:.1f} ms <= {margin:g} x {bound_ns / 1e6:g} ms",
    )


def needed_probes(start: int, points: int) -> int:
    """Probes the gallop from ``start`` and the bisection need, at most, to find the best
    passing point of a ``points``-point grid (passing monotone in the index)."""
    start = min(start, points - 1)
    worst = 0
    for best in range(points + 1):  # best == points: nothing passes
        fail, ok, k, count = -1, points, start, 0
        while ok == points:
            count += 1
            if k >= best:
                ok = k
            else:
                fail = k
                if k == points - 1:
                    break
                k = min(2 * k + 1, points - 1)
        while ok - fail > 1:
            count += 1
            mid = (fail + ok) // 2
            ok, fail = (mid, fail) if mid >= best else (ok, mid)
        worst = max(worst, count)
    return worst


def grid_points(ceiling_qps: float, settings: SearchSettings) -> list[float]:
    """The search grid below ``ceiling_qps``: powers of ``1 / step``, highest first.

    The grid is anchored at 1 QPS, not at the timed throughput: two sessions whose timings
    differ by a few percent probe the same targets, so their searches agree on a grid point
    (or land one step apart) instead of carrying the timing's noise into the target.
    Point 0 is the highest power at or below the ceiling.
    """
    ratio = 1.0 / settings.step
    top = math.floor(math.log(ceiling_qps) / math.log(ratio) + 1e-9)
    return [ratio ** (top - k) for k in range(settings.points)]


def search_server_target(
    probe: Callable[[float], Probe],
    ceiling_qps: float,
    settings: SearchSettings,
    fallback_load: float = 0.5,
) -> dict[str, Any]:
    """The highest grid target whose probe passes, backed off ``backoff_steps`` points.

    Grid point ``k`` is the ``k``-th power of ``1 / step`` below the ceiling (see
    :func:`grid_points`; the timed throughput is a ceiling a Server run cannot exceed). Probes gallop down from k = ``start`` until one passes, then bisect between
    the last failing and the first passing point; passing is assumed monotone in k. At most
    ``settings.budget`` runs (by default enough to end on the best passing point); when none passes the target is ``fallback_load`` x the ceiling
    (the calibration rule without a search; ``found`` False says so: such a machine is too
    busy or too slow for the bound, and a tiny target would only stretch the run). Returns ``{"target_qps", "probes", "grid_index", "found", "seconds"}``.
    """
    started = time.perf_counter()
    grid = grid_points(ceiling_qps, settings)
    budget = settings.budget
    results: dict[int, Probe] = {}
    order: list[int] = []

    def passes(k: int) -> bool:
        if k not in results:
            results[k] = probe(grid[k])
            order.append(k)
        return results[k].passed

    fail, ok = -1, settings.points  # indexes known to fail / to pass (virtual ends)
    k = min(settings.start, settings.points - 1)
    while len(order) < budget and ok == settings.points:
        if passes(k):
            ok = k
        else:
            fail = k
            if k == settings.points - 1:
                break
            k = min(2 * k + 1, settings.points - 1)
    while len(order) < budget and ok - fail > 1:
        mid = (fail + ok) // 2
        if passes(mid):
            ok = mid
        else:
            fail = mid
    found = ok < settings.points
    index = min(ok + settings.backoff_steps, settings.points - 1) if found else None
    target = grid[index] if index is not None else ceiling_qps * fallback_load
    return {
        "target_qps": round(target, 2),
        "grid_index": index,
        "found": found,
        "best_passing_qps": round(grid[ok], 2) if found else None,
        "probes": [results[i].to_dict() for i in order],
        "seconds": round(time.perf_counter() - started, 2),
        "settings": _search_settings(settings, ceiling_qps),
    }


def _search_settings(settings: SearchSettings, ceiling_qps: float) -> dict[str, Any]:
    """The search's ``settings`` object: what it probed with, and the grid's ceiling."""
    return {
        "probe_ms": settings.probe_ms,
        "probe_queries": settings.probe_queries,
        "step": settings.step,
        "latency_margin": settings.latency_margin,
        "backoff_steps": settings.backoff_steps,
        "probes": settings.budget,
        "start": settings.start,
        "ceiling_qps": round(ceiling_qps, 2),
        "grid": "powers of 1/step, anchored at 1 QPS",
    }


def _time_batches(engine: Engine, batch: int, budget_s: float) -> list[float]:
    """Seconds per call of ``batch`` samples, after one warm-up call, within ``budget_s``."""
    indices = np.arange(batch, dtype=np.int64) % engine.samples.count
    engine.infer(indices)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 1000):
        start = time.perf_counter()
        engine.infer(indices)
        times.append(time.perf_counter() - start)
    return times


def calibrate(
    engine: Engine,
    scenario: str,
    batch_size: int,
    server_load: float,
    search: Callable[[float], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Measured figures and the LoadGen targets derived from them for ``scenario``.

    ``search``: for Server, searches the target below the timed throughput (see
    :func:`search_server_target`); without it the target is ``server_load`` x throughput.
    """
    times = _time_batches(engine, batch_size, BUDGET_S)
    per_call = statistics.median(times)
    throughput = batch_size / per_call
    measured: dict[str, Any] = {
        "batch_size": batch_size,
        "calls": len(times),
        "median_call_ms": round(per_call * 1e3, 3),
        "samples_per_second": round(throughput, 2),
    }
    targets: dict[str, float]
    out: dict[str, Any] = {"measured": measured}
    if scenario == "Offline":
        targets = {"expected_qps": round(throughput, 2)}
    elif scenario == "Server":
        if search is not None and math.isfinite(throughput) and throughput > 0:
            result = search(throughput)
            out["search"] = result
            targets = {"target_qps": result["target_qps"]}
        else:
            targets = {"target_qps": round(throughput * server_load, 2)}
    else:
        # LoadGen pre-generates about min_duration / expected latency queries and ends a
        # run early ("ran out of generated queries") when the run is much faster than
        # expected: a busy moment during the timing must not inflate it, so half the
        # fastest call is used (more queries generated is harmless)
        fastest = float(min(times))
        measured["p90_call_ms"] = round(float(np.percentile(times, 90)) * 1e3, 3)
        targets = {"expected_latency_ns": max(1, int(fastest * 0.5 * 1e9))}
    out["targets"] = targets
    return out
