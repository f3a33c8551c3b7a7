"""The registered session object: its state, the generated items, the backend's lifecycle, and
each report's records filed in the run index (``results/index.py``)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Generator
from typing import Any

import pytest

from pytest_mlperf.backends.base import Backend, prepares_serially
from pytest_mlperf.catalog import Catalog
from pytest_mlperf.config import ItemSpec, RunConfig
from pytest_mlperf.errors import BackendError, ConfigError, MlperfError
from pytest_mlperf.identity import COLLECTOR, ItemId
from pytest_mlperf.items import MlperfCollector, MlperfItem
from pytest_mlperf.markers import marker_spec
from pytest_mlperf.placement import Placement
from pytest_mlperf.report_hooks import add_html_extras, add_suite_properties
from pytest_mlperf.results.index import RunIndex, run_identity
from pytest_mlperf.results.store import RunStore, new_run_id
from pytest_mlperf.run_end import keep_run, stopped_early
from pytest_mlperf.runner import ItemPipeline
from pytest_mlperf.shared import SharedPreparation
from pytest_mlperf.slurm import node_tags
from pytest_mlperf.stash import (
    MARKER_FAILURE_KEY,
    RECORDS_KEY,
    SPECS_KEY,
    USER_THRESHOLDS_KEY,
)
from pytest_mlperf.terminal_hooks import TerminalProgress, sigterm_as_interrupt
from pytest_mlperf.thresholds import ThresholdTable
from pytest_mlperf.transfer import node_scratch


class MlperfSession:
    """State and hook implementations of one pytest-mlperf run (one per process); items run
    through its :class:`~pytest_mlperf.runner.ItemPipeline` (``self.pipeline``)."""

    def __init__(
        self,
        config: pytest.Config,
        run_config: RunConfig,
        catalog: Catalog,
        thresholds: ThresholdTable,
        backend_name: str,
    ) -> None:
        self.config = config
        self.run_config = run_config
        self.catalog = catalog
        self.thresholds = thresholds
        self.backend_name = backend_name
        workerinput = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        run_id = workerinput.get("mlperf_run_id") if workerinput else None
        self.placement = Placement.from_workerinput(
            workerinput, run_config.split, run_config.docker_hosts
        )
        #: which node this process runs on (every record carries it; see docs/fleet.md)
        self.node = node_tags(worker=self.placement.worker if self.is_worker else None)
        #: a fleet worker writes under node-local scratch; its logs go back over xdist
        self.fleet_worker = bool(workerinput and workerinput.get("mlperf_fleet"))
        results_dir = run_config.results_dir
        if self.fleet_worker:
            results_dir = node_scratch(run_id or "", self.node["name"], self.placement.worker)
        self.store = RunStore(results_dir, run_id or new_run_id())
        #: the run's records, host and fleet view: results.json
        self.index = RunIndex(self.store, run_config, backend_name)
        #: progress lines, the ETA and the summary (plugin.py registers it)
        self.terminal = TerminalProgress(config, self.index, self.is_worker)
        self._backend: Backend | None = None
        self._backend_error: str | None = None
        self._plan: list[ItemSpec] = []
        self._shared: SharedPreparation | None = None
        self._logged_work: list[str] = []
        #: node ids a report arrived for (a session that stopped early left some out)
        self._reported: set[str] = set()
        self._side_backends: dict[str, Backend] = {}
        self.pipeline = ItemPipeline(
            run_config=run_config,
            catalog=catalog,
            thresholds=thresholds,
            backend_name=backend_name,
            store=self.store,
            placement=self.placement,
            node=self.node,
            backend=self.backend,
            system=lambda: self.system,
            progress=self.terminal.progress,
            emit_progress=self.terminal.emit_progress,
            tty=lambda: self.terminal.tty,
            eta_after=self.terminal.eta_after,
            result_ready=self.config.hook.pytest_mlperf_result_ready,
            side_backend=self.side_backend,
            interrupted=self._file_interrupted,
            passthrough=(pytest.exit.Exception,),
        )

    # -- collection -------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Append the generated items before -k/-m/--deselect/--lf filter the list.

        The collector goes through pytest's own collect hooks, so the items are counted,
        reported to xdist's controller and shown by ``--collect-only`` like any others.
        """
        self._validate_markers(items)
        if not self.run_config.enabled:
            return

        specs = self.config.stash.get(SPECS_KEY, None) or self.run_config.items()
        collector = MlperfCollector.from_parent(
            session, name=COLLECTOR, nodeid=COLLECTOR, runner=self, specs=specs
        )
        ihook = session.ihook
        ihook.pytest_collectstart(collector=collector)
        report = ihook.pytest_make_collect_report(collector=collector)
        ihook.pytest_collectreport(report=report)
        items.extend(x for x in report.result if isinstance(x, pytest.Item))

    def _validate_markers(self, items: list[pytest.Item]) -> None:
        """Hand-written ``@pytest.mark.mlperf(...)`` markers: a bad one is a usage error."""
        problems = []
        for item in items:
            marker = item.get_closest_marker("mlperf")
            if isinstance(item, MlperfItem) or marker is None or not (marker.args or marker.kwargs):
                continue
            try:
                marker_spec(self.catalog, marker.args, marker.kwargs)
            except ConfigError as exc:
                problems.append(f"{item.nodeid}: @pytest.mark.mlperf: {exc}")
        if problems:
            raise pytest.UsageError("\n".join(problems))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        """After a marker test's body: fail when its marker's bounds (or validity) failed."""
        yield
        failure = item.stash.get(MARKER_FAILURE_KEY, None)
        if failure is not None:
            raise pytest.fail.Exception(failure, pytrace=False)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Remember which items survived filtering: the backend prepares only those."""
        self._plan = [i.spec for i in session.items if isinstance(i, MlperfItem)]
        self.terminal.planned = len(self._plan)
        if self.config.getoption("mlperf_dry_run", False):
            from pytest_mlperf.dryrun_cli import dry_run_items

            backend = self.config.hook.pytest_mlperf_make_backend(
                name=self.backend_name, run_config=self.run_config, config=self.config
            )
            code, summary = dry_run_items(
                backend,
                self.backend_name,
                self._plan,
                lambda line: self.terminal.emit_progress(line, False, always=True),
            )
            pytest.exit(summary, returncode=code)

    # -- backend ----------------------------------------------------------------------------
    def backend(self) -> Backend:
        """The session's backend, made and prepared once; a failure is reported to every item."""
        if self._backend_error is not None:
            raise BackendError(self._backend_error)
        if self._backend is None:
            sigterm_as_interrupt()
            try:
                backend = self.config.hook.pytest_mlperf_make_backend(
                    name=self.backend_name, run_config=self.run_config, config=self.config
                )
                if backend is None:
                    raise BackendError(f"no plugin can make the backend {self.backend_name!r}")
                self.index.host = backend.describe()
                plan = list(
                    dict.fromkeys(
                        (self.catalog.benchmark(s.variant.name), s.scenario)
                        for s in self._plan
                        if s.mode != "accuracy"
                    )
                )
                self._shared = shared = SharedPreparation(
                    self.run_config.cache_dir
                    / "locks"
                    / f"prepare-{self.backend_name}-{self.placement.host_key}.lock",
                    self.store.root,
                    self.placement.host_key,
                )

                def prepare() -> list[str]:
                    try:
                        backend.prepare(plan, self.terminal.progress)
                    finally:  # what prepare found, even when it failed
                        self.index.host = backend.describe()
                    self._logged_work = list(self.index.host.get("work_done", []))
                    return self._logged_work

                shared.run(self.placement.worker, prepare, prepares_serially(backend))
                self._check_system(backend.system_name())
            except MlperfError as exc:
                self._backend_error = f"backend {self.backend_name!r} could not be prepared: {exc}"
                raise BackendError(self._backend_error) from exc
            self._backend = backend
            self.pipeline.backend_ready(backend, self.system, self.terminal.tty)
        return self._backend

    def side_backend(self, side: str) -> Backend:
        """``--mlperf-ab``: the backend of side ``A`` or ``B``: the session's, or (a side that
        sets ``threads``) one made and prepared once with the side's options."""
        ab = self.run_config.ab
        options = ab.variant(side).backend_options if ab else {}
        if not options:
            return self.backend()
        if side not in self._side_backends:
            self.backend()  # prepared first: the models are built and cached
            backend = self.config.hook.pytest_mlperf_make_backend(
                name=self.backend_name,
                run_config=dataclasses.replace(self.run_config, **options),
                config=self.config,
            )
            if backend is None:
                raise BackendError(f"no plugin can make the backend {self.backend_name!r}")
            plan = [(self.catalog.benchmark(s.variant.name), s.scenario) for s in self._plan]
            backend.prepare(list(dict.fromkeys(plan)), self.terminal.progress)
            self._side_backends[side] = backend
        return self._side_backends[side]

    def _file_interrupted(self, record: dict[str, Any], finished: bool) -> None:
        """An interrupted item's record goes into results.json now: no report will carry it
        (``finished``: the session ends here, a second Ctrl-C)."""
        if not self.is_worker:
            self.index.file_interrupted(record, finished)

    def _check_system(self, system: str) -> None:
        """A --mlperf-thresholds file for another system is a usage error (exit 4), now that
        the backend has named this run's system (``reference`` is checked at configure)."""
        from pytest_mlperf.thresholds import Threshold, check_thresholds

        user: list[Threshold] = self.config.stash.get(USER_THRESHOLDS_KEY, [])
        try:
            check_thresholds(user, self.catalog, system)
        except ConfigError as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)

    @property
    def system(self) -> str:
        """System name for thresholds: the option, else the backend's."""
        if self.run_config.system:
            return self.run_config.system
        return self._backend.system_name() if self._backend else "unknown"

    # -- reporting --------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the item's new records (and the host facts) to its report; xdist carries both.

        Records made during setup (fixtures) or the call go on the call report; when setup
        fails, on the setup report. Each record is attached exactly once.
        """
        report = yield
        pending = item.stash.get(RECORDS_KEY, [])
        if pending and (report.when != "setup" or report.failed):
            item.stash[RECORDS_KEY] = []
            report.mlperf_records = pending  # type: ignore[attr-defined]
            report.mlperf_host = self.index.host  # type: ignore[attr-defined]
            if self.config.pluginmanager.hasplugin("html"):
                add_html_extras(item.config, report, pending)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Controller side: collect each record and rewrite results.json at once (first:
        the terminal's result letter comes after)."""
        records = getattr(report, "mlperf_records", None)
        if self.is_worker:
            return
        self._reported.add(report.nodeid)
        if not records:
            crashed = self._crash_record(report)
            if crashed is None:
                return
            records = [crashed]
        self.index.records.extend(records)
        self.index.host = getattr(report, "mlperf_host", None) or self.index.host
        try:
            self.index.write(finished=False)
        except MlperfError as exc:  # e.g. disk full: say so, keep running, never INTERNALERROR
            self.index.error = str(exc)
            self.terminal.progress(str(exc))

    def _crash_record(self, report: pytest.TestReport) -> dict[str, Any] | None:
        """A generated item that died with its worker (xdist reports it, with no record)."""
        item_id = ItemId.parse(report.nodeid)
        if item_id is None or not report.failed:  # xdist's crash reports have when="???"
            return None
        if any(r["nodeid"] == report.nodeid for r in self.index.records):
            return None
        try:
            variant = self.catalog.variant(item_id.benchmark)
        except KeyError:
            return None
        spec = ItemSpec(
            variant, item_id.scenario, item_id.mode, self.run_config.config_ver_for(variant)
        )
        message = (report.longreprtext or "worker crashed").strip().splitlines()[-1]
        record = self.pipeline.error_record(
            spec, report.nodeid, None, BackendError(f"crashed: {message}"), time.perf_counter()
        )
        gateway = getattr(getattr(report, "node", None), "gateway", None)
        record["worker"] = getattr(gateway, "id", None)
        return record

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Release the backend; the controller writes results.json and the host properties.

        ``tryfirst``: the JUnit report is written by junitxml's own sessionfinish, after this.
        """
        if self._backend is not None:
            later = self._backend.describe().get("work_done", [])[len(self._logged_work) :]
            if later and self._shared is not None:  # e.g. models first needed by a fixture
                with contextlib.suppress(MlperfError):
                    self._shared.log(self.placement.worker, list(later), None)
            self._backend.close()
        for backend in self._side_backends.values():
            backend.close()
        if self.is_worker or not self.index.records:
            return
        try:
            self.index.write(finished=True)
        except MlperfError as exc:
            self.terminal.progress(str(exc))
        add_suite_properties(self.config, self.index.host, run_identity(self.index))
        stopped = stopped_early(session, exitstatus, self._reported)
        t = self.terminal
        t.baseline_message, t.history_message = keep_run(self.index, session, stopped)
