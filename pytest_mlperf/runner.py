"""Running one item: the backend run (or a compliance test's runs), the verdict, the record."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlperf import __version__, progress
from pytest_mlperf.absides import add_sides
from pytest_mlperf.abtest import AbRun, AbSpec, ab_check, ab_record, ab_request, compared_value
from pytest_mlperf.backends.base import Backend, Progress, RunOutcome, RunRequest, no_progress
from pytest_mlperf.baseline import (
    Comparison,
    compare_to_baseline,
    pinned_targets,
    value_range,
    with_baseline,
)
from pytest_mlperf.catalog import RUN_MODES, Catalog
from pytest_mlperf.checks import FAIL, SKIP, Check, Outcome, Verdict, decide
from pytest_mlperf.config import ItemSpec, RunConfig
from pytest_mlperf.errors import BackendError, BackendSkip, MlperfError, RunFailed
from pytest_mlperf.placement import (
    DeviceLock,
    Placement,
    device_keys,
    load_snapshot,
    machine_load,
)
from pytest_mlperf.provenance import digest, find_reusable, provenance
from pytest_mlperf.results.loadgen import ParsedLog, parse_dir
from pytest_mlperf.results.record import MlperfResult, build_record
from pytest_mlperf.results.store import RunStore, atomic_write_json, free_space_problem
from pytest_mlperf.retarget import StepDown, step_down
from pytest_mlperf.schemas import validate
from pytest_mlperf.thresholds import Threshold, ThresholdTable
from pytest_mlperf.verdict import judge_performance

if TYPE_CHECKING:
    from pytest_mlperf.history.gate import HistoryGate


class ItemPipeline:
    """Runs one item: the request, the backend run (fresh, reused with ``--mlperf-reuse``, or
    a compliance test's runs), the gates, the verdict (:func:`~pytest_mlperf.checks.decide`)
    and the record (``result.json``).

    Pytest-free: the session makes one and passes its collaborators in (tests pass fakes):
    ``backend`` makes and prepares the backend once, ``system`` names the system for the
    threshold table, ``progress`` shows a line (``emit_progress``/``tty``/``eta_after``: the
    running item's progress line), ``result_ready`` announces a written record,
    ``interrupted`` files the record of an item stopped by Ctrl-C or SIGTERM (``finished``:
    the session ends), ``passthrough`` are exceptions that end the session, not the item.
    """

    def __init__(
        self,
        *,
        run_config: RunConfig,
        catalog: Catalog,
        thresholds: ThresholdTable,
        backend_name: str,
        store: RunStore,
        placement: Placement,
        node: dict[str, Any],
        backend: Callable[[], Backend],
        system: Callable[[], str],
        progress: Progress = no_progress,
        emit_progress: Callable[[str, bool], None] = lambda line, redraw: None,
        tty: Callable[[], bool] = lambda: False,
        eta_after: Callable[[float], float | None] = lambda expected_s: None,
        result_ready: Callable[[dict[str, Any], str], None] = lambda record, nodeid: None,
        side_backend: Callable[[str], Backend] | None = None,
        interrupted: Callable[[dict[str, Any], bool], None] = lambda record, finished: None,
        passthrough: tuple[type[Exception], ...] = (),
    ) -> None:
        self.run_config = run_config
        self.catalog = catalog
        self.thresholds = thresholds
        self.backend_name = backend_name
        self.store = store
        self.placement = placement
        #: the node this process runs on (slurm.node_tags)
        self.node = node
        self.backend = backend
        self._system = system
        self.progress = progress
        self.emit_progress = emit_progress
        self._tty = tty
        self._eta_after = eta_after
        self.result_ready = result_ready
        #: ``--mlperf-ab``: the backend of side ``A`` or ``B`` (default: the session's)
        self.side_backend = side_backend or (lambda side: self.backend())
        self.interrupted = interrupted
        self.passthrough = passthrough
        self._said_serialised = False
        #: (benchmark, scenario, mode, config_ver, fast) → log dir of a finished run
        self._finished: dict[tuple[str, str, str, str, bool], Path] = {}
        self._history_gate: HistoryGate | None = None

    @property
    def system(self) -> str:
        """System name for thresholds."""
        return self._system()

    @property
    def tty(self) -> bool:
        """Whether the terminal is a TTY (progress is redrawn there)."""
        return self._tty()

    # -- running ----------------------------------------------------------------------------
    def run_item(
        self,
        spec: ItemSpec,
        nodeid: str,
        overrides: Mapping[str, float] | None = None,
        fast: bool | None = None,
        threshold_override: Threshold | None = None,
    ) -> MlperfResult:
        """Run one item and write its result.json; raises :class:`RunFailed` with a record.

        ``fast`` and ``threshold_override`` replace the session's setting and the threshold
        table's entry (hand-written tests through ``mlperf_run`` / the ``mlperf`` marker).
        """
        run_fast = self.run_config.fast if fast is None else fast
        started = time.perf_counter()
        log_dir: Path | None = None

        def hard_exit() -> None:  # a second Ctrl-C: record the item, write results.json
            self.record_interrupted(spec, nodeid, log_dir, started, run_fast, finished=True)

        progress.start_item(
            progress.ItemProgress(
                label=f"{spec.variant.name} {spec.scenario} {spec.mode}",
                emit=self.emit_progress,
                tty=self.tty,
                eta_after=self._eta_after,
                on_hard_exit=hard_exit,
            )
        )
        try:
            backend = self.backend()
            config_vers = backend.supported_config_vers()
            if spec.config_ver not in config_vers:
                raise BackendError(
                    f"the {backend.name} backend cannot run config_ver "
                    f"{spec.config_ver!r}; valid: {', '.join(config_vers)}"
                )
            log_dir = self.store.item_dir(spec.variant.name, spec.scenario, spec.mode)
            full = free_space_problem(log_dir)
            if full:
                raise MlperfError(full)
            bench = self.catalog.benchmark(spec.variant.name)
            request = RunRequest(
                benchmark=bench,
                variant=spec.variant,
                scenario=spec.scenario,
                mode=spec.mode,
                config_ver=spec.config_ver,
                fast=run_fast,
                outdir=log_dir,
                overrides=dict(overrides or {}),
            )
            compliance: dict[str, Any] | None = None
            comparison: Comparison | None = None
            accuracy: dict[str, Any] | None = None
            threshold_text: str | None = None
            pinned = self._pinned_targets(spec, run_fast)
            if pinned is not None:
                request = replace(request, overrides={**pinned[0], **request.overrides})
            repeat: dict[str, Any] | None = None
            measured: dict[str, Any] = {}
            bound: dict[str, Any] | None = None
            if spec.mode in RUN_MODES:
                prov, outcome = self._provenance(request, backend.describe())
                if outcome is None:
                    with self._device_lock(backend, nodeid, measured):
                        outcome, parsed, repeat = self._measure(backend, request, measured)
                else:
                    parsed = parse_dir(outcome.log_dir)
                if outcome.compare is not None:
                    parsed.warnings.extend(outcome.compare(parsed))
                verdict, threshold_text, comparison, accuracy = self._judge(
                    spec, request, backend, outcome, parsed, run_fast, threshold_override, repeat
                )
                if measured.get("ab"):
                    verdict = decide([ab_check(measured["ab"])], prior=verdict)
                if spec.mode == "performance":
                    bound = self._bound(spec, parsed, threshold_override)
            else:  # a compliance test (TEST01): its own runs, verified together
                from pytest_mlperf.compliance import run_compliance

                prov, _ = self._provenance(request, backend.describe(), reuse=False)
                with self._device_lock(backend, nodeid, measured):
                    outcome, parsed, verdict, compliance = run_compliance(
                        backend, request, self._earlier(spec, run_fast), self.progress
                    )
            prov["settings_sha256"] = digest(outcome.settings)
            submission: dict[str, Any] | None = None
            if self.run_config.submission_checks != "off":
                from pytest_mlperf.submission import judge_item

                verdict, submission = judge_item(
                    self.run_config.submission_checks,
                    spec.variant.name,
                    spec.scenario,
                    spec.mode,
                    parsed,
                    verdict,
                    accuracy,
                    outcome.log_dir,
                    log_dir / "submission",
                )
            record = build_record(
                **self._identity(spec, nodeid, run_fast),
                parsed=parsed,
                verdict=verdict,
                log_dir=outcome.log_dir,
                settings=outcome.settings,
                calibration=outcome.calibration,
                timing={
                    "run_s": round(outcome.run_seconds, 4),
                    "item_s": round(time.perf_counter() - started, 4),
                },
                threshold=threshold_text,
                item_dir=log_dir,
                details=outcome.details,
                accuracy=accuracy,
                extra={
                    "baseline": comparison.to_dict() if comparison else None,
                    "threshold_bound": bound,
                    "worker": self.placement.worker,
                    "node": self.node,
                    "device": outcome.settings.get("device"),
                    "docker_host": self.placement.docker_host,
                    "provenance": prov,
                    "submission": submission,
                    "compliance": compliance,
                    "repeat": repeat,
                    "targets_source": pinned[1] if pinned else None,
                    **measured,
                },
            )
            validate(record, "result", f"result record of {nodeid}")
            atomic_write_json(log_dir / "result.json", record)
            if spec.mode in RUN_MODES:  # a compliance test may reuse it
                key = (spec.variant.name, spec.scenario, spec.mode, spec.config_ver, run_fast)
                self._finished[key] = outcome.log_dir
        except BackendSkip as exc:  # the system cannot run this item: skipped, not an error
            record = self.error_record(
                spec, nodeid, log_dir, exc, started, run_fast, gives=Outcome.SKIPPED
            )
        except self.passthrough:  # e.g. a usage error found once the backend is known
            raise
        except Exception as exc:
            cause: Exception = exc
            full = free_space_problem(log_dir) if log_dir is not None else None
            if full and full not in str(exc):  # the disk filled up during the run
                cause = MlperfError(f"{full}; so: {type(exc).__name__}: {exc}")
            record = self.error_record(spec, nodeid, log_dir, cause, started, run_fast)
            raise RunFailed(MlperfResult(record), cause) from exc
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see plugin.py): keep the record
            self.record_interrupted(spec, nodeid, log_dir, started, run_fast)
            raise
        finally:
            progress.end_item()
        result = MlperfResult(record)
        self.result_ready(record, nodeid)
        return result

    def _judge(
        self,
        spec: ItemSpec,
        request: RunRequest,
        backend: Backend,
        outcome: RunOutcome,
        parsed: ParsedLog,
        run_fast: bool,
        threshold_override: Threshold | None,
        repeat: Mapping[str, Any] | None = None,
    ) -> tuple[Verdict, str | None, Comparison | None, dict[str, Any] | None]:
        """A performance or accuracy item's verdict, threshold text, baseline and accuracy."""
        threshold = None
        comparison: Comparison | None = None
        accuracy: dict[str, Any] | None = None
        threshold_text: str | None = None
        if spec.mode == "performance":
            threshold = threshold_override or self.thresholds.lookup(
                self.system, spec.variant.name, spec.scenario, spec.config_ver
            )
            verdict = judge_performance(parsed, run_fast, threshold)
            threshold_text = threshold.describe() if threshold else None
            comparison = self._compare_baseline(spec, parsed, run_fast, outcome, repeat)
            if comparison is not None:
                verdict = with_baseline(verdict, comparison)
        else:
            from pytest_mlperf.accuracy.evaluate import assess_accuracy

            metadata = (outcome.details or {}).get("harness_metadata") or {}
            if metadata.get("accuracy"):  # NVIDIA's harness scored it: judge and cross-check
                from pytest_mlperf.accuracy.harness import assess_harness_accuracy

                _ours, recomputed, _t = assess_accuracy(
                    backend, request, parsed, outcome.log_dir, self.progress
                )
                verdict, accuracy, threshold_text = assess_harness_accuracy(
                    request, parsed, metadata, outcome.log_dir, recomputed
                )
            else:
                verdict, accuracy, threshold_text = assess_accuracy(
                    backend, request, parsed, outcome.log_dir, self.progress
                )
        return verdict, threshold_text, comparison, accuracy

    def _bound(
        self, spec: ItemSpec, parsed: ParsedLog, threshold_override: Threshold | None
    ) -> dict[str, Any] | None:
        """The threshold as numbers, with the metric in the bound's unit (results.json)."""
        threshold = threshold_override or self.thresholds.lookup(
            self.system, spec.variant.name, spec.scenario, spec.config_ver
        )
        return None if threshold is None else threshold.bound_record(parsed.metric_value)

    def _earlier(self, spec: ItemSpec, fast: bool) -> dict[str, Path]:
        """Log directories of this process's finished runs of the same item, by mode."""
        out = {}
        for mode in RUN_MODES:
            key = (spec.variant.name, spec.scenario, mode, spec.config_ver, fast)
            if key in self._finished:
                out[mode] = self._finished[key]
        return out

    def _provenance(
        self, request: RunRequest, host: Mapping[str, Any], reuse: bool = True
    ) -> tuple[dict[str, Any], RunOutcome | None]:
        """The run's provenance; with ``--mlperf-reuse``, an identical earlier result's outcome."""
        prov = provenance(
            benchmark_data=request.benchmark.raw,
            variant=request.variant.name,
            scenario=request.scenario,
            mode=request.mode,
            config_ver=request.config_ver,
            fast=request.fast,
            overrides=request.overrides,
            backend=self.backend_name,
            system=self.system,
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
        outcome = RunOutcome(
            log_dir=Path(old["log_dir"]),
            settings=dict(old.get("settings") or {}),
            run_seconds=float((old.get("timing") or {}).get("run_s", 0.0)),
            calibration=old.get("calibration"),
            details=old.get("backend_details"),
        )
        return prov, outcome

    def _compare_baseline(
        self,
        spec: ItemSpec,
        parsed: ParsedLog,
        fast: bool,
        outcome: RunOutcome | None = None,
        repeat: Mapping[str, Any] | None = None,
    ) -> Comparison | None:
        """The item's metric against ``--mlperf-baseline`` (performance items only)."""
        baseline, history = self.run_config.baseline, self.run_config.history
        if baseline is None and (history is None or not history.judge):
            return None
        current = {
            "result_validity": parsed.result_validity,
            "loadgen": parsed.loadgen,
            "settings": outcome.settings if outcome else {},
            "repeat": repeat,
            "benchmark": spec.variant.name,
            "scenario": spec.scenario,
            "mode": spec.mode,
            "config_ver": spec.config_ver,
            "system": self.system,
            "fast": fast,
            "metric": {
                "name": parsed.metric_name,
                "value": parsed.metric_value,
                "unit": parsed.unit,
            },
        }
        if baseline is None:  # --mlperf-history: the last N good comparable records
            return self._history_comparison(current, spec, fast)
        return compare_to_baseline(current, baseline, self.run_config.tolerance_pct)

    def _history_comparison(
        self, current: dict[str, Any], spec: ItemSpec, fast: bool
    ) -> Comparison:
        from pytest_mlperf.history.gate import HistoryGate

        assert self.run_config.history is not None
        if self._history_gate is None:
            self._history_gate = HistoryGate(self.run_config.history, self.run_config.tolerance_pct)
        pinned = self._pinned_targets(spec, fast)
        current.update(
            backend=self.backend_name,
            plugin_version=__version__,
            targets_source=pinned[1] if pinned else None,
        )
        return self._history_gate.judge(current, self.backend().describe())

    def record_interrupted(
        self,
        spec: ItemSpec,
        nodeid: str,
        log_dir: Path | None = None,
        started: float | None = None,
        fast: bool | None = None,
        finished: bool = False,
    ) -> None:
        """Record ``spec`` as interrupted (Ctrl-C or SIGTERM while it ran or while the
        backend prepared for it; no figures) and file it now (results.json): no report will
        carry it. ``finished``: the session ends here (a second Ctrl-C)."""
        record = self.error_record(
            spec,
            nodeid,
            log_dir,
            BackendError("interrupted (Ctrl-C or SIGTERM)"),
            time.perf_counter() if started is None else started,
            fast,
            gives=Outcome.INTERRUPTED,
        )
        self.interrupted(record, finished)

    # -- measuring: one device set at a time, machine load, repeats -------------------------
    @contextlib.contextmanager
    def _device_lock(
        self, backend: Backend, nodeid: str, measured: dict[str, Any]
    ) -> Iterator[None]:
        """Hold the host-wide locks of the devices this run uses (see ``placement``)."""
        import os

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
            measured["device_lock"] = lock.to_dict()

    def _measure(
        self, backend: Backend, request: RunRequest, measured: dict[str, Any]
    ) -> tuple[RunOutcome, ParsedLog, dict[str, Any] | None]:
        """``--mlperf-repeat`` LoadGen runs (performance; one otherwise), machine load around
        each; returns the judged run (the median) and the repeat summary (None for one run).
        With ``--mlperf-ab`` the same loop runs the A/B schedule (each side on its backend);
        the pair goes into ``measured["ab"]`` and the candidate's runs are the item's."""
        ab = self.run_config.ab if request.mode == "performance" else None
        count = self.run_config.repeat if request.mode == "performance" else 1
        count = len(ab.schedule) if ab else count
        runs: list[tuple[RunOutcome, ParsedLog, dict[str, Any]]] = []
        for index in range(count):
            req = request
            if ab is not None:  # --mlperf-ab: the side's backend, directory and targets
                req = ab_request(ab, index, request, runs[0][0].settings if runs else None)
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
            before = load_snapshot()
            outcome = backend.run(req, self.progress)
            load = machine_load(before, load_snapshot())
            parsed = parse_dir(outcome.log_dir)
            lower = (
                None
                if "retarget" in measured
                else step_down(req.scenario, req.overrides, outcome.calibration, parsed)
            )
            if lower is not None:  # the plugin's target was too high: once, lower
                outcome, parsed, req, request = self._rerun_lower(
                    backend, req, request, outcome, lower, measured
                )
                load = machine_load(before, load_snapshot())
            if load["warning"]:
                parsed.warnings.append(load["warning"])
                self.progress(f"{request.variant.name} {request.scenario}: {load['warning']}")
            runs.append((outcome, parsed, load))
        if ab is not None:  # the pair judged by its ratio; the candidate's runs are the item's
            runs = runs[len(ab.schedule) - len(ab.order) :]  # the warm-ups are not judged
            measured["ab"] = self._ab_record(ab, request, runs)
            runs = [run for run, side in zip(runs, ab.order, strict=True) if side == "B"]
            count = len(runs)
        if count == 1:
            measured["machine_load"] = runs[0][2]
            return runs[0][0], runs[0][1], None
        summary, judged = repeat_summary([(p, o.log_dir) for o, p, _ in runs])
        outcome, parsed, _ = runs[judged]
        summary["runs"] = [
            {**run, "machine_load": load}
            for run, (_, _, load) in zip(summary["runs"], runs, strict=True)
        ]
        busy = [i + 1 for i, (_, _, load) in enumerate(runs) if load["busy"]]
        measured["machine_load"] = {
            "busy": bool(busy),
            "busy_runs": busy,
            "warning": f"runs {', '.join(map(str, busy))} of {count} ran on a busy machine"
            if busy
            else None,
        }
        for i, (_, other, _) in enumerate(runs):
            if i != judged and other.result_validity != parsed.result_validity:
                parsed.warnings.append(
                    f"run {i + 1} of {count} was {other.result_validity} "
                    f"({', '.join(r.code for r in other.invalid_reasons) or 'no reason logged'})"
                )
        outcome.run_seconds = sum(o.run_seconds for o, _, _ in runs)
        return outcome, parsed, summary

    def _rerun_lower(
        self,
        backend: Backend,
        req: RunRequest,
        request: RunRequest,
        first: RunOutcome,
        lower: StepDown,
        measured: dict[str, Any],
    ) -> tuple[RunOutcome, ParsedLog, RunRequest, RunRequest]:
        """Rerun ``req`` at ``lower``'s target (later repeats too); the record says so
        (``retarget``, a warning) and keeps the search's calibration."""
        self.progress(
            f"{req.variant.name} Server: INVALID at the chosen target {lower.from_qps:g}/s "
            f"({lower.why}); rerunning once at {lower.to_qps:g}/s"
        )
        outdir = req.outdir / "retarget"
        outdir.mkdir(parents=True, exist_ok=True)
        overrides = {**req.overrides, "target_qps": lower.to_qps}
        outcome = backend.run(replace(req, outdir=outdir, overrides=overrides), self.progress)
        outcome.run_seconds += first.run_seconds
        if outcome.calibration is None:
            outcome.calibration = first.calibration
        parsed = parse_dir(outcome.log_dir)
        parsed.warnings.append(lower.note(parsed.result_validity))
        measured["retarget"] = lower.to_dict(str(first.log_dir), parsed.result_validity)
        self.progress(f"{req.variant.name} Server: {lower.note(parsed.result_validity)}")
        return (
            outcome,
            parsed,
            replace(req, overrides=overrides),
            replace(request, overrides=overrides),
        )

    def _ab_record(
        self,
        ab: AbSpec,
        request: RunRequest,
        runs: list[tuple[RunOutcome, ParsedLog, dict[str, Any]]],
    ) -> dict[str, Any]:
        """Both sides' runs, the paired ratio and its interval (the record's ``ab``)."""
        ab_runs = [
            AbRun(
                side,
                outcome.log_dir,
                compared_value(request.scenario, parsed.metric_value, parsed.loadgen),
                parsed.result_validity,
                parsed.metric_value,
            )
            for (outcome, parsed, _), side in zip(runs, ab.order, strict=True)
        ]
        parsed = runs[0][1]
        record = ab_record(
            ab,
            request.scenario,
            (parsed.metric_name, parsed.unit),
            ab_runs,
            self.run_config.tolerance_pct,
        )
        fields = {"scenario": request.scenario, "config_ver": request.config_ver}
        return add_sides(record, self.side_backend, {**fields, "fast": request.fast})

    def _pinned_targets(self, spec: ItemSpec, fast: bool) -> tuple[dict[str, float], str] | None:
        """Targets pinned by ``--mlperf-targets`` (first) or the baseline's same item."""
        rc = self.run_config
        if spec.mode != "performance":
            return None
        if rc.targets:
            entry = rc.targets.get(spec.variant.name) or rc.targets.get(spec.variant.family)
            values = dict((entry or {}).get(spec.scenario) or {})
            if values:
                return {
                    k: float(v) for k, v in values.items()
                }, f"--mlperf-targets {rc.targets_file}"
        if rc.baseline is not None:
            found = pinned_targets(
                rc.baseline,
                {
                    "benchmark": spec.variant.name,
                    "scenario": spec.scenario,
                    "mode": spec.mode,
                    "config_ver": spec.config_ver,
                    "system": self.system,
                    "fast": fast,
                },
            )
            if found:
                return found, f"--mlperf-baseline {rc.baseline.path}"
        return None

    def error_result(self, spec: ItemSpec, nodeid: str, exc: Exception) -> MlperfResult:
        """A result record for an item that failed before it could run."""
        return MlperfResult(self.error_record(spec, nodeid, None, exc, time.perf_counter()))

    def _identity(self, spec: ItemSpec, nodeid: str, fast: bool) -> dict[str, Any]:
        """The record fields that say which item ran where."""
        return {
            "nodeid": nodeid,
            "benchmark": spec.variant.name,
            "scenario": spec.scenario,
            "mode": spec.mode,
            "config_ver": spec.config_ver,
            "backend": self.backend_name,
            "system": self.system,
            "fast": fast,
        }

    def error_record(
        self,
        spec: ItemSpec,
        nodeid: str,
        log_dir: Path | None,
        exc: Exception,
        started: float,
        fast: bool | None = None,
        gives: Outcome = Outcome.ERROR,
    ) -> dict[str, Any]:
        """The record of an item that has no result: it errored, was interrupted, or (a
        :class:`BackendSkip`, ``gives`` skipped) cannot run on this system."""
        message = f"{type(exc).__name__}: {exc}"
        if gives == Outcome.SKIPPED:  # no table: the reason is the backend's own words
            check = Check("run", "skipped", "-", SKIP, reason=str(exc), gives=gives, listed=False)
        else:
            check = Check("run", "error", "a result", FAIL, message, gives=gives, reason=message)
        verdict = decide([check])
        record = build_record(
            **self._identity(spec, nodeid, self.run_config.fast if fast is None else fast),
            parsed=None,
            verdict=verdict,
            log_dir=log_dir or self.store.root,
            settings={},
            calibration=None,
            timing={"item_s": round(time.perf_counter() - started, 4)},
            threshold=None,
            error=message,
            extra={"node": self.node},
        )
        if log_dir is not None:
            # if this write fails too, the record still reaches results.json via the report
            with contextlib.suppress(MlperfError):
                atomic_write_json(log_dir / "result.json", record)
        return record


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
