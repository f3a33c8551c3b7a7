"""Running one item: the backend run (or a compliance test's runs), the verdict, the record."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_mlperf import __version__, progress
from pytest_mlperf.abtest import ab_check
from pytest_mlperf.backends.base import Backend, Progress, RunOutcome, RunRequest, no_progress
from pytest_mlperf.baseline import Comparison, compare_to_baseline, with_baseline
from pytest_mlperf.catalog import RUN_MODES, Catalog
from pytest_mlperf.checks import FAIL, SKIP, Check, Outcome, decide
from pytest_mlperf.config import ItemSpec, RunConfig
from pytest_mlperf.errors import BackendError, BackendSkip, MlperfError, RunFailed
from pytest_mlperf.history.results_file import pinned_targets
from pytest_mlperf.item_steps import ItemRun, Judged, Measured
from pytest_mlperf.measure import Measurer
from pytest_mlperf.placement import Placement
from pytest_mlperf.provenance import digest
from pytest_mlperf.results.loadgen import ParsedLog, parse_dir
from pytest_mlperf.results.record import MlperfResult, build_record
from pytest_mlperf.results.store import RunStore, atomic_write_json, free_space_problem
from pytest_mlperf.schemas import validate
from pytest_mlperf.thresholds import Threshold, ThresholdTable
from pytest_mlperf.verdict import judge_performance

if TYPE_CHECKING:
    from pytest_mlperf.history.gate import HistoryGate

#: (benchmark, scenario, mode, config_ver, fast): one item's runs, whatever its directory
RunKey = tuple[str, str, str, str, bool]


class ResultReady(Protocol):
    """Announces a written record (``pytest_mlperf_result_ready``'s caller, keywords only)."""

    def __call__(self, *, record: dict[str, Any], nodeid: str) -> None: ...


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
        result_ready: ResultReady = lambda record, nodeid: None,
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
        #: makes and prepares the session's backend once (later calls: the same one)
        self.session_backend = backend
        self._system = system
        self.progress = progress
        self.emit_progress = emit_progress
        self._tty = tty
        self._eta_after = eta_after
        self.result_ready = result_ready
        self.interrupted = interrupted
        self.passthrough = passthrough
        #: ``--mlperf-ab``: the backend of side ``A`` or ``B`` (default: the session's)
        self.measurer = Measurer(
            run_config,
            placement,
            progress,
            side_backend or (lambda side: self._backend()),
            backend_name,
            store,
        )
        #: the log dir of each finished performance/accuracy run (a compliance test's input)
        self._finished: dict[RunKey, Path] = {}
        self._history_gate: HistoryGate | None = None
        #: the session's backend, system name and terminal kind, once it handed them down
        self._ready: tuple[Backend, str, bool] | None = None

    def backend_ready(self, backend: Backend, system: str, tty: bool) -> None:
        """The session made and prepared its backend: items run on it, under ``system``,
        with their progress line for a terminal (``tty``) or a log, without asking again."""
        self._ready = (backend, system, tty)

    def _backend(self) -> Backend:
        return self._ready[0] if self._ready else self.session_backend()

    @property
    def system(self) -> str:
        """System name for thresholds."""
        return self._ready[1] if self._ready else self._system()

    @property
    def tty(self) -> bool:
        """Whether the terminal is a TTY (progress is redrawn there)."""
        return self._ready[2] if self._ready else self._tty()

    # -- the steps of one item --------------------------------------------------------------
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
        item = self._start(spec, nodeid, fast)
        try:
            backend = self._backend_for(spec)
            item.log_dir = self._item_dir(spec)
            request, targets_source = self._request(item, overrides)
            threshold = self._threshold(item, threshold_override)
            if spec.mode in RUN_MODES:
                measured = self._measure(item, backend, request)
                judged = self._judge(item, backend, request, measured, threshold, targets_source)
            else:  # a compliance test (TEST01): its own runs, verified together
                measured, judged = self._compliance(item, backend, request)
            judged = self._submission(item, measured, judged)
            record = self._record(item, measured, judged, targets_source)
            self._file(item, record, measured.run)
        except BackendSkip as exc:  # the system cannot run this item: skipped, not an error
            record = self._no_result(item, exc, Outcome.SKIPPED)
        except self.passthrough:  # e.g. a usage error found once the backend is known
            raise
        except Exception as exc:
            cause = self._disk_full_cause(item, exc)
            raise RunFailed(MlperfResult(self._no_result(item, cause)), cause) from exc
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see plugin.py): keep the record
            self.interrupted(self._no_result(item, _INTERRUPTED, Outcome.INTERRUPTED), False)
            raise
        finally:
            progress.end_item()
        self.result_ready(record=record, nodeid=nodeid)
        return MlperfResult(record)

    def _start(self, spec: ItemSpec, nodeid: str, fast: bool | None) -> ItemRun:
        """The item's identity and clock; its progress line (a second Ctrl-C records it)."""
        run_fast = self.run_config.fast if fast is None else fast
        identity = self._identity(spec, nodeid, run_fast)
        item = ItemRun(spec, nodeid, run_fast, time.perf_counter(), identity, identity["system"])

        def hard_exit() -> None:  # a second Ctrl-C: record the item, write results.json
            self.interrupted(self._no_result(item, _INTERRUPTED, Outcome.INTERRUPTED), True)

        progress.start_item(
            progress.ItemProgress(
                label=f"{spec.variant.name} {spec.scenario} {spec.mode}",
                emit=self.emit_progress,
                tty=self.tty,
                eta_after=self._eta_after,
                on_hard_exit=hard_exit,
            )
        )
        return item

    def _backend_for(self, spec: ItemSpec) -> Backend:
        """The session's backend, when it can run the item's config_ver."""
        backend = self._backend()
        config_vers = backend.supported_config_vers()
        if spec.config_ver not in config_vers:
            raise BackendError(
                f"the {backend.name} backend cannot run config_ver "
                f"{spec.config_ver!r}; valid: {', '.join(config_vers)}"
            )
        return backend

    def _item_dir(self, spec: ItemSpec) -> Path:
        """The item's directory under the run's, when its disk has room."""
        log_dir = self.store.item_dir(spec.variant.name, spec.scenario, spec.mode)
        full = free_space_problem(log_dir)
        if full:
            raise MlperfError(full)
        return log_dir

    def _request(
        self, item: ItemRun, overrides: Mapping[str, float] | None
    ) -> tuple[RunRequest, str | None]:
        """The backend's request (pinned targets under the caller's overrides) and where
        the pinned targets came from (None: none pinned)."""
        spec = item.spec
        assert item.log_dir is not None
        request = RunRequest(
            benchmark=self.catalog.benchmark(spec.variant.name),
            variant=spec.variant,
            scenario=spec.scenario,
            mode=spec.mode,
            config_ver=spec.config_ver,
            fast=item.fast,
            outdir=item.log_dir,
            overrides=dict(overrides or {}),
        )
        pinned = self._pinned_targets(spec, item.fast, item.system)
        if pinned is None:
            return request, None
        return replace(request, overrides={**pinned[0], **request.overrides}), pinned[1]

    def _threshold(self, item: ItemRun, override: Threshold | None) -> Threshold | None:
        """A performance item's threshold: the caller's, else the table's (None: none)."""
        spec = item.spec
        if spec.mode != "performance":
            return None
        return override or self.thresholds.lookup(
            item.system, spec.variant.name, spec.scenario, spec.config_ver
        )

    def _measure(self, item: ItemRun, backend: Backend, request: RunRequest) -> Measured:
        """A performance or accuracy run: an identical earlier one (``--mlperf-reuse``), else
        measured under the device lock; the backend's own result files cross-checked."""
        prov, reused = self.measurer.provenance(request, backend.describe(), item.system)
        extras: dict[str, Any] = {}
        if reused is None:
            with self.measurer.device_lock(backend, item.nodeid, extras):
                run, parsed, repeat = self.measurer.measure(backend, request, extras)
        else:
            run, parsed, repeat = reused, parse_dir(reused.log_dir), None
        cross_check = run.compare  # the backend's own result files against the logs
        if cross_check is not None:
            parsed.warnings.extend(cross_check(parsed))
        prov["settings_sha256"] = digest(run.settings)
        return Measured(run, parsed, prov, extras, repeat)

    def _compliance(
        self, item: ItemRun, backend: Backend, request: RunRequest
    ) -> tuple[Measured, Judged]:
        """A compliance test's runs under the device lock, verified together."""
        from pytest_mlperf.compliance import run_compliance

        prov, _ = self.measurer.provenance(request, backend.describe(), item.system, reuse=False)
        extras: dict[str, Any] = {}
        with self.measurer.device_lock(backend, item.nodeid, extras):
            run, parsed, verdict, compliance = run_compliance(
                backend, request, self._earlier(item), self.progress
            )
        prov["settings_sha256"] = digest(run.settings)
        return Measured(run, parsed, prov, extras), Judged(verdict, compliance=compliance)

    def _judge(
        self,
        item: ItemRun,
        backend: Backend,
        request: RunRequest,
        measured: Measured,
        threshold: Threshold | None,
        targets_source: str | None,
    ) -> Judged:
        """A performance item's validity, threshold, baseline and A/B; an accuracy item's
        accuracy (NVIDIA's harness scored it: its figures, cross-checked)."""
        run, parsed = measured.run, measured.parsed
        if item.spec.mode != "performance":
            return self._judge_accuracy(backend, request, run, parsed)
        verdict = judge_performance(parsed, item.fast, threshold)
        comparison = self._baseline_comparison(item, measured, backend, targets_source)
        if comparison is not None:
            verdict = with_baseline(verdict, comparison)
        if measured.extras.get("ab"):
            verdict = decide([ab_check(measured.extras["ab"])], prior=verdict)
        return Judged(
            verdict,
            threshold.describe() if threshold else None,
            comparison,
            bound=None if threshold is None else threshold.bound_record(parsed.metric_value),
        )

    def _judge_accuracy(
        self, backend: Backend, request: RunRequest, run: RunOutcome, parsed: ParsedLog
    ) -> Judged:
        """An accuracy item's verdict, record ``accuracy`` and threshold text."""
        from pytest_mlperf.accuracy.evaluate import assess_accuracy

        ours = assess_accuracy(backend, request, parsed, run.log_dir, self.progress)
        metadata = (run.details or {}).get("harness_metadata") or {}
        if not metadata.get("accuracy"):
            return Judged(ours[0], ours[2], accuracy=ours[1])
        # NVIDIA's harness scored it: its figures judged, ours (recomputed) cross-checked
        from pytest_mlperf.accuracy.harness import assess_harness_accuracy

        verdict, accuracy, text = assess_harness_accuracy(
            request, parsed, metadata, run.log_dir, ours[1]
        )
        return Judged(verdict, text, accuracy=accuracy)

    def _submission(self, item: ItemRun, measured: Measured, judged: Judged) -> Judged:
        """The submission rules that concern the item (``--mlperf-submission-checks``)."""
        rules = self.run_config.submission_checks
        if rules == "off":
            return judged
        from pytest_mlperf.submission import judge_item

        spec = item.spec
        assert item.log_dir is not None
        verdict, submission = judge_item(
            rules,
            spec.variant.name,
            spec.scenario,
            spec.mode,
            measured.parsed,
            judged.verdict,
            judged.accuracy,
            measured.run.log_dir,
            item.log_dir / "submission",
        )
        return replace(judged, verdict=verdict, submission=submission)

    def _record(
        self, item: ItemRun, measured: Measured, judged: Judged, targets_source: str | None
    ) -> dict[str, Any]:
        """The record of an item that ran."""
        run = measured.run
        return build_record(
            **item.identity,
            parsed=measured.parsed,
            verdict=judged.verdict,
            log_dir=run.log_dir,
            settings=run.settings,
            calibration=run.calibration,
            timing={
                "run_s": round(run.run_seconds, 4),
                "item_s": round(time.perf_counter() - item.started, 4),
            },
            threshold=judged.threshold_text,
            item_dir=item.log_dir,
            details=run.details,
            accuracy=judged.accuracy,
            extra={
                "baseline": judged.comparison.to_dict() if judged.comparison else None,
                "threshold_bound": judged.bound,
                "worker": self.placement.worker,
                "node": self.node,
                "device": run.settings.get("device"),
                "docker_host": self.placement.docker_host,
                "provenance": measured.provenance,
                "submission": judged.submission,
                "compliance": judged.compliance,
                "repeat": measured.repeat,
                "targets_source": targets_source,
                **measured.extras,
            },
        )

    def _file(self, item: ItemRun, record: dict[str, Any], run: RunOutcome) -> None:
        """Validate and write the record; a run a compliance test of the item may reuse."""
        assert item.log_dir is not None
        validate(record, "result", f"result record of {item.nodeid}")
        atomic_write_json(item.log_dir / "result.json", record)
        if item.spec.mode in RUN_MODES:
            self._finished[_run_key(item.spec, item.spec.mode, item.fast)] = run.log_dir

    def _disk_full_cause(self, item: ItemRun, exc: Exception) -> Exception:
        """``exc``, or an error saying the disk filled up during the run and then ``exc``."""
        full = free_space_problem(item.log_dir) if item.log_dir is not None else None
        if full and full not in str(exc):
            return MlperfError(f"{full}; so: {type(exc).__name__}: {exc}")
        return exc

    # -- the steps' helpers ----------------------------------------------------------------
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

    def _pinned_targets(
        self, spec: ItemSpec, fast: bool, system: str
    ) -> tuple[dict[str, float], str] | None:
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
                    "system": system,
                    "fast": fast,
                },
            )
            if found:
                return found, f"--mlperf-baseline {rc.baseline.path}"
        return None

    def _baseline_comparison(
        self, item: ItemRun, measured: Measured, backend: Backend, targets_source: str | None
    ) -> Comparison | None:
        """The item's metric against ``--mlperf-baseline`` or ``--mlperf-history``."""
        baseline, history = self.run_config.baseline, self.run_config.history
        if baseline is None and (history is None or not history.judge):
            return None
        spec, parsed = item.spec, measured.parsed
        current = {
            "result_validity": parsed.result_validity,
            "loadgen": parsed.loadgen,
            "settings": measured.run.settings,
            "repeat": measured.repeat,
            "benchmark": spec.variant.name,
            "scenario": spec.scenario,
            "mode": spec.mode,
            "config_ver": spec.config_ver,
            "system": item.system,
            "fast": item.fast,
            "metric": {
                "name": parsed.metric_name,
                "value": parsed.metric_value,
                "unit": parsed.unit,
            },
        }
        if baseline is not None:
            return compare_to_baseline(current, baseline, self.run_config.tolerance_pct)
        # --mlperf-history: the last N good comparable records
        from pytest_mlperf.history.gate import HistoryGate

        if self._history_gate is None:
            assert history is not None
            self._history_gate = HistoryGate(history, self.run_config.tolerance_pct)
        current.update(
            backend=self.backend_name,
            plugin_version=__version__,
            targets_source=targets_source,
        )
        return self._history_gate.judge(current, backend.describe())

    def _earlier(self, item: ItemRun) -> dict[str, Path]:
        """Log directories of this process's finished runs of the same item, by mode."""
        keys = {mode: _run_key(item.spec, mode, item.fast) for mode in RUN_MODES}
        return {mode: self._finished[key] for mode, key in keys.items() if key in self._finished}

    # -- records of items without a result ---------------------------------------------------
    def _no_result(
        self, item: ItemRun, exc: Exception, gives: Outcome = Outcome.ERROR
    ) -> dict[str, Any]:
        """The record of ``item`` that stopped with ``exc`` (written to its directory)."""
        return self._no_result_record(item.identity, item.log_dir, exc, item.started, gives)

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
            _INTERRUPTED,
            time.perf_counter() if started is None else started,
            fast,
            gives=Outcome.INTERRUPTED,
        )
        self.interrupted(record, finished)

    def error_result(self, spec: ItemSpec, nodeid: str, exc: Exception) -> MlperfResult:
        """A result record for an item that failed before it could run."""
        return MlperfResult(self.error_record(spec, nodeid, None, exc, time.perf_counter()))

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
        identity = self._identity(spec, nodeid, self.run_config.fast if fast is None else fast)
        return self._no_result_record(identity, log_dir, exc, started, gives)

    def _no_result_record(
        self,
        identity: dict[str, Any],
        log_dir: Path | None,
        exc: Exception,
        started: float,
        gives: Outcome,
    ) -> dict[str, Any]:
        message = f"{type(exc).__name__}: {exc}"
        if gives == Outcome.SKIPPED:  # no table: the reason is the backend's own words
            check = Check("run", "skipped", "-", SKIP, reason=str(exc), gives=gives, listed=False)
        else:
            check = Check("run", "error", "a result", FAIL, message, gives=gives, reason=message)
        record = build_record(
            **identity,
            parsed=None,
            verdict=decide([check]),
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


#: what an item stopped by Ctrl-C or SIGTERM is recorded with
_INTERRUPTED = BackendError("interrupted (Ctrl-C or SIGTERM)")


def _run_key(spec: ItemSpec, mode: str, fast: bool) -> RunKey:
    return (spec.variant.name, spec.scenario, mode, spec.config_ver, fast)
