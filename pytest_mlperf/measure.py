"""Measuring one item: its provenance (or, with ``--mlperf-reuse``, an identical earlier
run), its LoadGen runs under the host-wide device lock, ``--mlperf-repeat`` runs or the
``--mlperf-ab`` schedule, the machine load around each run, and one step down for a Server
target the plugin chose and LoadGen found too high (:func:`step_down`). No pytest here.

The step down: the Server search probes short runs; the timed run is longer and sometimes
still misses the latency bound or early stopping at the searched target (on a busy machine,
or near the edge). Such an INVALID is the plugin's choice failing, not the system: the item
is rerun once at a lower target. A target the user or a baseline pinned is never moved.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from pytest_mlperf.absides import add_sides
from pytest_mlperf.abtest import AbSpec, ab_record_of_runs, ab_request
from pytest_mlperf.backends.base import Backend, Progress, RunOutcome, RunRequest
from pytest_mlperf.config import RunConfig
from pytest_mlperf.history.results_file import value_range
from pytest_mlperf.placement import DeviceLock, Placement, device_keys, load_snapshot, machine_load
from pytest_mlperf.provenance import find_reusable, provenance
from pytest_mlperf.results.loadgen import SHORTENED_RUN_REASONS, ParsedLog, parse_dir
from pytest_mlperf.results.store import RunStore


class LoadgenRun(NamedTuple):
    """One backend run, its parsed logs and the machine load around it."""

    run: RunOutcome
    parsed: ParsedLog
    load: dict[str, Any]


class Measurement(NamedTuple):
    """The judged run (the median of repeats), its logs, the repeat summary (None: one run)."""

    run: RunOutcome
    parsed: ParsedLog
    repeat: dict[str, Any] | None


class Measurer:
    """Runs an item's backend runs, or finds an identical earlier one (``--mlperf-reuse``).

    ``side_backend``: the backend of A/B side ``A`` or ``B``; ``extras``, passed to each
    call, collects the record's ``device_lock``, ``machine_load``, ``retarget`` and ``ab``.
    """

    def __init__(
        self,
        run_config: RunConfig,
        placement: Placement,
        progress: Progress,
        side_backend: Callable[[str], Backend],
        backend_name: str,
        store: RunStore,
    ) -> None:
        self.run_config = run_config
        self.placement = placement
        self.progress = progress
        self.side_backend = side_backend
        self.backend_name = backend_name
        self.store = store
        self._said_serialised = False

    def provenance(
        self, request: RunRequest, host: Mapping[str, Any], system: str, reuse: bool = True
    ) -> tuple[dict[str, Any], RunOutcome | None]:
        """The run's provenance; with ``--mlperf-reuse``, an identical earlier result's run."""
        prov = provenance(
            benchmark_data=request.benchmark.raw,
            variant=request.variant.name,
            scenario=request.scenario,
            mode=request.mode,
            config_ver=request.config_ver,
            fast=request.fast,
            overrides=request.overrides,
            backend=self.backend_name,
            system=system,
            calibrate=self.run_config.calibrate,
            host=host,
        )
        if not (self.run_config.reuse and reuse):
            return prov, None
        parts = (request.variant.name, request.scenario, request.mode)
        earlier = find_reusable(self.run_config.results_dir, self.store.root, parts, prov["id"])
        if earlier is None:
            return prov, None
        path, old = earlier
        prov["status"] = "reused"
        prov["reused_from"] = str(path)
        self.progress(f"{request.variant.name} {request.scenario} {request.mode}: reusing {path}")
        return prov, RunOutcome(
            log_dir=Path(old["log_dir"]),
            settings=dict(old.get("settings") or {}),
            run_seconds=float((old.get("timing") or {}).get("run_s", 0.0)),
            calibration=old.get("calibration"),
            details=old.get("backend_details"),
        )

    @contextlib.contextmanager
    def device_lock(self, backend: Backend, nodeid: str, extras: dict[str, Any]) -> Iterator[None]:
        """Hold the host-wide locks of the devices this run uses (see ``placement``)."""
        lock = DeviceLock(
            device_keys(backend, self.placement),
            f"pid {os.getpid()}, worker {self.placement.worker}, {nodeid}",
        )
        shared = self.placement.count > 1 and self.placement.split == "none"
        if shared and not self._said_serialised:
            self._said_serialised = True
            self.progress(
                f"{self.placement.count} xdist workers share {', '.join(lock.keys)} "
                "(no --mlperf-split): their measurements take turns under a host-wide "
                "device lock"
            )
        lock.acquire(self.progress)
        try:
            yield
        finally:
            lock.release()
            extras["device_lock"] = lock.to_dict()

    def measure(self, backend: Backend, request: RunRequest, extras: dict[str, Any]) -> Measurement:
        """``--mlperf-repeat`` LoadGen runs (performance; one otherwise), machine load around
        each; returns the judged run (the median) and the repeat summary (None for one run).
        With ``--mlperf-ab`` the same loop runs the A/B schedule (each side on its backend);
        the pair goes into ``extras["ab"]`` and the candidate's runs are the item's."""
        ab = self.run_config.ab if request.mode == "performance" else None
        count = self.run_config.repeat if request.mode == "performance" else 1
        runs, request = self._runs(backend, request, ab, extras, count)
        if ab is not None:  # the pair judged by its ratio; the candidate's runs are the item's
            runs = runs[len(ab.schedule) - len(ab.order) :]  # the warm-ups are not judged
            pairs = [(r.run.log_dir, r.parsed) for r in runs]
            record = ab_record_of_runs(ab, request.scenario, pairs, self.run_config.tolerance_pct)
            fields = {"scenario": request.scenario, "config_ver": request.config_ver}
            extras["ab"] = add_sides(record, self.side_backend, {**fields, "fast": request.fast})
            runs = [run for run, side in zip(runs, ab.order, strict=True) if side == "B"]
        if len(runs) == 1:
            extras["machine_load"] = runs[0].load
            return Measurement(runs[0].run, runs[0].parsed, None)
        return _median_of(runs, extras)

    def _runs(
        self,
        backend: Backend,
        request: RunRequest,
        ab: AbSpec | None,
        extras: dict[str, Any],
        count: int,
    ) -> tuple[list[LoadgenRun], RunRequest]:
        """Each run of the schedule, in order; the request as the last run left it (a
        Server target stepped down stays down for the later runs)."""
        count = len(ab.schedule) if ab else count
        runs: list[LoadgenRun] = []
        for index in range(count):
            req = request
            if ab is not None:  # --mlperf-ab: the side's backend, directory and targets
                req = ab_request(ab, index, request, runs[0].run.settings if runs else None)
                side, round_ = ab.schedule[index]
                backend = self.side_backend(side)
                self.progress(
                    f"{request.variant.name} {request.scenario}: A/B "
                    f"{f'round {round_} of {ab.rounds}' if round_ else 'warm-up'} "
                    f"({side}: {ab.variant(side).describe()})"
                )
            elif count > 1:
                outdir = request.outdir / f"repeat-{index + 1}"
                outdir.mkdir(parents=True, exist_ok=True)
                req = replace(request, outdir=outdir)
                self.progress(
                    f"{request.variant.name} {request.scenario}: run {index + 1} of {count}"
                )
            one, request = self._run_once(backend, req, request, extras)
            runs.append(one)
        return runs, request

    def _run_once(
        self, backend: Backend, req: RunRequest, request: RunRequest, extras: dict[str, Any]
    ) -> tuple[LoadgenRun, RunRequest]:
        """One run of ``req`` with the machine load around it; a Server target the plugin
        chose and LoadGen found too high: rerun once lower (``request`` lowered too)."""
        before = load_snapshot()
        run = backend.run(req, self.progress)
        load = machine_load(before, load_snapshot())
        parsed = parse_dir(run.log_dir)
        lower = (
            None
            if "retarget" in extras
            else step_down(req.scenario, req.overrides, run.calibration, parsed)
        )
        if lower is not None:  # the plugin's target was too high: once, lower
            run, parsed, overrides, extras["retarget"] = rerun_lower(
                backend, req, run, lower, self.progress
            )
            request = replace(request, overrides=overrides)
            load = machine_load(before, load_snapshot())
        if load["warning"]:
            parsed.warnings.append(load["warning"])
            self.progress(f"{request.variant.name} {request.scenario}: {load['warning']}")
        return LoadgenRun(run, parsed, load), request


def _median_of(runs: list[LoadgenRun], extras: dict[str, Any]) -> Measurement:
    """The judged (median) run of several, the repeat summary with each run's machine load,
    and the record's ``machine_load`` (which runs ran on a busy machine)."""
    count = len(runs)
    summary, judged = repeat_summary([(r.parsed, r.run.log_dir) for r in runs])
    run, parsed, _ = runs[judged]
    summary["runs"] = [
        {**entry, "machine_load": r.load} for entry, r in zip(summary["runs"], runs, strict=True)
    ]
    busy = [i + 1 for i, r in enumerate(runs) if r.load["busy"]]
    extras["machine_load"] = {
        "busy": bool(busy),
        "busy_runs": busy,
        "warning": f"runs {', '.join(map(str, busy))} of {count} ran on a busy machine"
        if busy
        else None,
    }
    for i, other in enumerate(r.parsed for r in runs):
        if i != judged and other.result_validity != parsed.result_validity:
            parsed.warnings.append(
                f"run {i + 1} of {count} was {other.result_validity} "
                f"({', '.join(why.code for why in other.invalid_reasons) or 'no reason logged'})"
            )
    run.run_seconds = sum(r.run.run_seconds for r in runs)
    return Measurement(run, parsed, summary)


def repeat_summary(
    runs: list[tuple[ParsedLog, Path]],
) -> tuple[dict[str, Any], int]:
    """Median, min, max and relative spread of the runs' metric; the index of the judged run.

    The judged run is the median one; with an even count, the worse of the two middle ones
    (a gate errs towards failing). A run without a metric value counts as the worst.
    """
    higher_better = next((p.unit for p, _ in runs if p.unit), "samples/s") == "samples/s"

    def goodness(i: int) -> float:
        value = runs[i][0].metric_value
        if value is None:
            return float("-inf")
        return value if higher_better else -value

    order = sorted(range(len(runs)), key=goodness, reverse=True)
    judged = order[len(runs) // 2]
    values = [p.metric_value for p, _ in runs if p.metric_value is not None]
    summary: dict[str, Any] = {
        "count": len(runs),
        "values": [p.metric_value for p, _ in runs],
        **value_range(values),
        "unit": runs[judged][0].unit,
        "judged_run": judged + 1,
        "runs": [
            {
                "log_dir": str(d),
                "value": p.metric_value,
                "validity": p.result_validity,
                "p99_latency_ns": p.loadgen.get("result_99.00_percentile_latency_ns"),
            }
            for p, d in runs
        ],
    }
    return summary, judged


# -- one step down for a Server target the plugin chose ------------------------------------
#: what a too-high Server target makes LoadGen say
TOO_HIGH = frozenset({"early_stopping_not_met", "perf_constraints_not_met"})
#: grid steps below the chosen target (the search's own step ratio, 0.93 by default)
STEPS_DOWN = 2
DEFAULT_STEP = 0.93


@dataclass(frozen=True)
class StepDown:
    """The rerun's target and why the first run's target was given up."""

    from_qps: float
    to_qps: float
    why: str

    def note(self, validity: str | None) -> str:
        """One line for the record's warnings and the terminal."""
        return (
            f"the Server target the plugin chose ({self.from_qps:g}/s) was INVALID "
            f"({self.why}): reran once at {self.to_qps:g}/s, {validity or 'no result'}"
        )

    def to_dict(self, first_log_dir: str, validity: str | None) -> dict[str, Any]:
        """The record's ``retarget``."""
        return {
            "from_qps": self.from_qps,
            "to_qps": self.to_qps,
            "why": self.why,
            "first_log_dir": first_log_dir,
            "validity": validity,
        }


def step_down(
    scenario: str,
    overrides: Mapping[str, float],
    calibration: Mapping[str, Any] | None,
    parsed: ParsedLog,
) -> StepDown | None:
    """The lower target to rerun at, or None: not Server, a pinned target (``overrides``),
    a target the plugin did not choose (no calibration), or not INVALID for a too-high target
    (other reasons than ``TOO_HIGH`` and a shortened run's)."""
    if scenario != "Server" or "target_qps" in overrides or not calibration:
        return None
    target = (calibration.get("targets") or {}).get("target_qps")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or target <= 0:
        return None
    if parsed.result_validity != "INVALID":
        return None
    codes = {r.code for r in parsed.invalid_reasons}
    if not codes & TOO_HIGH or codes - TOO_HIGH - SHORTENED_RUN_REASONS:
        return None
    step = ((calibration.get("search") or {}).get("settings") or {}).get("step", DEFAULT_STEP)
    if not isinstance(step, (int, float)) or not 0 < step < 1:
        step = DEFAULT_STEP
    lower = float(target) * step**STEPS_DOWN
    completed = parsed.metric_value
    if completed is not None and math.isfinite(completed) and 0 < completed * step < lower:
        lower = completed * step  # it did not even keep up: below what it completed
    why = "; ".join(r.message for r in parsed.invalid_reasons if r.code in TOO_HIGH)
    return StepDown(float(target), round(max(lower, 0.01), 2), why)


def rerun_lower(
    backend: Backend, req: RunRequest, first: RunOutcome, lower: StepDown, progress: Progress
) -> tuple[RunOutcome, ParsedLog, dict[str, float], dict[str, Any]]:
    """Rerun ``req`` at ``lower``'s target, in ``<outdir>/retarget``; returns the rerun (its
    time includes the first run's; it keeps the search's calibration), its logs (a warning
    says so), the overrides later runs keep, and the record's ``retarget``."""
    progress(
        f"{req.variant.name} Server: INVALID at the chosen target {lower.from_qps:g}/s "
        f"({lower.why}); rerunning once at {lower.to_qps:g}/s"
    )
    outdir = req.outdir / "retarget"
    outdir.mkdir(parents=True, exist_ok=True)
    overrides = {**req.overrides, "target_qps": lower.to_qps}
    run = backend.run(replace(req, outdir=outdir, overrides=overrides), progress)
    run.run_seconds += first.run_seconds
    if run.calibration is None:
        run.calibration = first.calibration
    parsed = parse_dir(run.log_dir)
    parsed.warnings.append(lower.note(parsed.result_validity))
    record = lower.to_dict(str(first.log_dir), parsed.result_validity)
    progress(f"{req.variant.name} Server: {lower.note(parsed.result_validity)}")
    return run, parsed, overrides, record
