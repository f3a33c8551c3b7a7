"""The registered session object: generates items, owns the backend, writes results."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.backends.base import Backend, RunRequest
from pytest_mlperf.catalog import Catalog
from pytest_mlperf.config import ItemSpec, RunConfig
from pytest_mlperf.errors import BackendError, MlperfError
from pytest_mlperf.items import MlperfCollector, MlperfItem, RunFailed
from pytest_mlperf.report.terminal import summary_table
from pytest_mlperf.results.loadgen import ACCURACY, count_accuracy_entries, parse_dir
from pytest_mlperf.results.record import MlperfResult, build_record
from pytest_mlperf.results.store import RunStore, atomic_write_json, new_run_id
from pytest_mlperf.schemas import validate
from pytest_mlperf.thresholds import ThresholdTable
from pytest_mlperf.verdict import Check, Verdict, judge_accuracy_unevaluated, judge_performance

RESULTS_SCHEMA_VERSION = 1


class MlperfSession:
    """State and hook implementations of one pytest-mlperf run (one per process)."""

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
        self.store = RunStore(run_config.results_dir, run_id or new_run_id())
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.records: list[dict[str, Any]] = []
        self.host: dict[str, Any] = {}
        self._backend: Backend | None = None
        self._backend_error: str | None = None
        self._plan: list[ItemSpec] = []

    # -- collection -------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Append the generated items before -k/-m/--deselect/--lf filter the list.

        The collector goes through pytest's own collect hooks, so the items are counted,
        reported to xdist's controller and shown by ``--collect-only`` like any others.
        """
        specs = self.run_config.items()
        collector = MlperfCollector.from_parent(
            session, name="mlperf", nodeid="mlperf", runner=self, specs=specs
        )
        ihook = session.ihook
        ihook.pytest_collectstart(collector=collector)
        report = ihook.pytest_make_collect_report(collector=collector)
        ihook.pytest_collectreport(report=report)
        items.extend(x for x in report.result if isinstance(x, pytest.Item))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Remember which items survived filtering: the backend prepares only those."""
        self._plan = [i.spec for i in session.items if isinstance(i, MlperfItem)]

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        """Say what will run and where results go."""
        rc = self.run_config
        return [
            f"mlperf: backend={self.backend_name} config_ver={rc.config_ver or 'per benchmark'} "
            f"modes={','.join(rc.modes)} fast={rc.fast} calibrate={rc.calibrate}",
            f"mlperf: results in {self.store.root}",
        ]

    # -- backend ----------------------------------------------------------------------------
    def progress(self, line: str) -> None:
        """Show a progress line in the terminal, even while output is captured."""
        if self.is_worker or self.config.get_verbosity() < 0:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        if capman is not None:
            with capman.global_and_fixture_disabled():
                reporter.write_line(f"[mlperf] {line}")
        else:
            reporter.write_line(f"[mlperf] {line}")

    def backend(self) -> Backend:
        """The session's backend, made and prepared once; a failure is reported to every item."""
        if self._backend_error is not None:
            raise BackendError(self._backend_error)
        if self._backend is None:
            try:
                backend = self.config.hook.pytest_mlperf_make_backend(
                    name=self.backend_name, run_config=self.run_config, config=self.config
                )
                if backend is None:
                    raise BackendError(f"no plugin can make the backend {self.backend_name!r}")
                self.host = backend.describe()
                plan = list(
                    dict.fromkeys(
                        (self.catalog.benchmark(s.variant.name), s.scenario)
                        for s in self._plan
                        if s.mode == "performance"
                    )
                )
                try:
                    backend.prepare(plan, self.progress)
                finally:
                    self.host = backend.describe()  # what prepare found, even when it failed
            except MlperfError as exc:
                self._backend_error = f"backend {self.backend_name!r} could not be prepared: {exc}"
                raise BackendError(self._backend_error) from exc
            self._backend = backend
        return self._backend

    @property
    def system(self) -> str:
        """System name for thresholds: the option, else the backend's."""
        if self.run_config.system:
            return self.run_config.system
        return self._backend.system_name() if self._backend else "unknown"

    # -- running ----------------------------------------------------------------------------
    def run_item(
        self, spec: ItemSpec, nodeid: str, overrides: Mapping[str, float] | None = None
    ) -> MlperfResult:
        """Run one item and write its result.json; raises :class:`RunFailed` with a record."""
        started = time.perf_counter()
        log_dir: Path | None = None
        try:
            backend = self.backend()
            config_vers = backend.supported_config_vers()
            if spec.config_ver not in config_vers:
                raise BackendError(
                    f"the {backend.name} backend cannot run config_ver "
                    f"{spec.config_ver!r}; valid: {', '.join(config_vers)}"
                )
            log_dir = self.store.item_dir(spec.variant.name, spec.scenario, spec.mode)
            bench = self.catalog.benchmark(spec.variant.name)
            request = RunRequest(
                benchmark=bench,
                variant=spec.variant,
                scenario=spec.scenario,
                mode=spec.mode,
                config_ver=spec.config_ver,
                fast=self.run_config.fast,
                outdir=log_dir,
                overrides=dict(overrides or {}),
            )
            outcome = backend.run(request, self.progress)
            parsed = parse_dir(outcome.log_dir)
            if outcome.compare is not None:
                parsed.warnings.extend(outcome.compare(parsed))
            threshold = None
            if spec.mode == "performance":
                threshold = self.thresholds.lookup(
                    self.system, spec.variant.name, spec.scenario, spec.config_ver
                )
                verdict = judge_performance(parsed, self.run_config.fast, threshold)
            else:
                accuracy_log = outcome.log_dir / ACCURACY
                entries = count_accuracy_entries(accuracy_log) if accuracy_log.is_file() else 0
                verdict = judge_accuracy_unevaluated(entries)
            record = build_record(
                nodeid=nodeid,
                benchmark=spec.variant.name,
                scenario=spec.scenario,
                mode=spec.mode,
                config_ver=spec.config_ver,
                backend=self.backend_name,
                system=self.system,
                fast=self.run_config.fast,
                parsed=parsed,
                verdict=verdict,
                log_dir=outcome.log_dir,
                settings=outcome.settings,
                calibration=outcome.calibration,
                timing={
                    "run_s": round(outcome.run_seconds, 4),
                    "item_s": round(time.perf_counter() - started, 4),
                },
                threshold=threshold.describe() if threshold else None,
                item_dir=log_dir,
                details=outcome.details,
            )
            validate(record, "result", f"result record of {nodeid}")
            atomic_write_json(log_dir / "result.json", record)
        except Exception as exc:
            record = self._error_record(spec, nodeid, log_dir, exc, started)
            raise RunFailed(MlperfResult(record), exc) from exc
        result = MlperfResult(record)
        self.config.hook.pytest_mlperf_result_ready(record=record, nodeid=nodeid)
        return result

    def error_result(self, spec: ItemSpec, nodeid: str, exc: Exception) -> MlperfResult:
        """A result record for an item that failed before it could run."""
        return MlperfResult(self._error_record(spec, nodeid, None, exc, time.perf_counter()))

    def _error_record(
        self, spec: ItemSpec, nodeid: str, log_dir: Path | None, exc: Exception, started: float
    ) -> dict[str, Any]:
        message = f"{type(exc).__name__}: {exc}"
        verdict = Verdict("error", [Check("run", "error", "a result", False, message)], [message])
        record = build_record(
            nodeid=nodeid,
            benchmark=spec.variant.name,
            scenario=spec.scenario,
            mode=spec.mode,
            config_ver=spec.config_ver,
            backend=self.backend_name,
            system=self.system,
            fast=self.run_config.fast,
            parsed=None,
            verdict=verdict,
            log_dir=log_dir or self.store.root,
            settings={},
            calibration=None,
            timing={"item_s": round(time.perf_counter() - started, 4)},
            threshold=None,
            error=message,
        )
        if log_dir is not None:
            # if this write fails too, the record still reaches results.json via the report
            with contextlib.suppress(MlperfError):
                atomic_write_json(log_dir / "result.json", record)
        return record

    # -- reporting --------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the record (and the host facts) to the report; xdist carries both.

        That is the call report, or the setup report when setup failed.
        """
        report = yield
        if _owns_record(item, report):
            report.mlperf_record = item.result.record  # type: ignore[attr-defined]
            report.mlperf_host = self.host  # type: ignore[attr-defined]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Controller side: collect each record and rewrite results.json at once."""
        record = getattr(report, "mlperf_record", None)
        if self.is_worker or record is None:
            return
        self.records.append(record)
        self.host = getattr(report, "mlperf_host", None) or self.host
        self.write_index(finished=False)

    def write_index(self, finished: bool) -> None:
        """Write ``results.json`` atomically with every record so far."""
        data = {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "run_id": self.store.run_id,
            "started": self.started,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")
            if finished
            else None,
            "backend": self.backend_name,
            "system": self.records[-1]["system"] if self.records else self.run_config.system,
            "host": self.host,
            "settings": {
                "config_ver": self.run_config.config_ver or "per benchmark",
                "modes": list(self.run_config.modes),
                "fast": self.run_config.fast,
                "calibrate": self.run_config.calibrate,
            },
            "items": self.records,
        }
        atomic_write_json(self.store.index_path, data)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Release the backend; the controller writes results.json and the host properties.

        ``tryfirst``: the JUnit report is written by junitxml's own sessionfinish, after this.
        """
        if self._backend is not None:
            self._backend.close()
        if self.is_worker or not self.records:
            return
        try:
            self.write_index(finished=True)
        except MlperfError as exc:
            self.progress(str(exc))
        from pytest_mlperf.report.junit import add_host_properties

        add_host_properties(self.config, self.host)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The results table at the end of the session."""
        if not self.records:
            return
        terminalreporter.section("MLPerf results")
        for line in summary_table(self.records):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"results: {self.store.index_path}")


def _owns_record(item: pytest.Item, report: pytest.TestReport) -> bool:
    """Whether ``report`` is the one that carries the item's result record."""
    if not isinstance(item, MlperfItem) or item.result is None:
        return False
    return report.when == "call" or (report.when == "setup" and report.failed)


class XdistHooks:
    """Registered only when pytest-xdist is active: share the run id with workers."""

    def __init__(self, session: MlperfSession) -> None:
        self.session = session

    def pytest_configure_node(self, node: Any) -> None:
        """Every worker writes into the controller's run directory."""
        node.workerinput["mlperf_run_id"] = self.session.store.run_id


class HtmlHooks:
    """Registered only when pytest-html is active."""

    def __init__(self, session: MlperfSession) -> None:
        self.session = session

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        """Add the MLPerf results table and the host record to the summary."""
        from pytest_mlperf.report.html import summary_html

        s = self.session
        prefix.append(summary_html(s.records, s.host, str(s.store.root)))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Per-item extras: checks, LoadGen figures and links to the logs."""
        report = yield
        if _owns_record(item, report):
            assert isinstance(item, MlperfItem) and item.result is not None
            from pytest_html import extras

            from pytest_mlperf.report.html import item_html

            htmlpath = getattr(item.config.option, "htmlpath", None)
            report_dir = Path(htmlpath).resolve().parent if htmlpath else None
            existing = list(getattr(report, "extras", []))
            report.extras = [*existing, extras.html(item_html(item.result.record, report_dir))]  # type: ignore[attr-defined]
        return report
