"""The terminal: the header lines, ``[mlperf]`` progress lines (redrawn at a terminal), the
``mlperf `` location prefix of generated items, the ETA, the results summary at the end;
and SIGTERM ended like Ctrl-C."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from pytest_mlperf.redact import redact
from pytest_mlperf.report.terminal import summary_table
from pytest_mlperf.results.index import RunIndex
from pytest_mlperf.shared import read_preparations


class TerminalProgress:
    """What the run shows at the terminal; registered by plugin.py beside the session (as
    pytest-xdist's TerminalDistReporter is beside its DSession). Workers show nothing."""

    def __init__(self, config: pytest.Config, index: RunIndex, is_worker: bool) -> None:
        self.config = config
        self.index = index
        self.is_worker = is_worker
        #: how many generated items survived filtering (the ETA's plan; 0: none)
        self.planned = 0
        #: what saving the baseline and the history said (the summary's last lines)
        self.baseline_message: str | None = None
        self.history_message: str | None = None

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        """Say what will run and where results go."""
        index, rc = self.index, self.index.run_config
        if not rc.enabled:
            return []
        return [
            f"mlperf: backend={index.backend_name} config_ver={rc.config_ver or 'per benchmark'} "
            f"modes={','.join(rc.modes)} fast={rc.fast} calibrate={rc.calibrate}",
            f"mlperf: results in {index.store.root}",
        ]

    def progress(self, line: str) -> None:
        """Show a progress line in the terminal, even while output is captured."""
        self.emit_progress(line, False)

    @property
    def tty(self) -> bool:
        """Whether progress goes to a terminal (redrawn) or a log (a line per interval)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        return bool(reporter is not None and reporter.isatty)

    def emit_progress(self, line: str, redraw: bool, always: bool = False) -> None:
        """A ``[mlperf]`` line; ``redraw``: replace the previous one (at a terminal); an
        empty line ends a redrawn one; ``always``: shown under ``-q`` too (the dry run's
        answer is its output)."""
        if self.is_worker or (self.config.get_verbosity() < 0 and not always):
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        disabled = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with disabled:
            if not line:
                reporter.write("\n")
            elif redraw:
                reporter.rewrite(f"[mlperf] {redact(line)}", erase=True)
            else:
                reporter.write_line(f"[mlperf] {redact(line)}")
            # the item's location and result letter then start a line of their own
            # (instead of a bare "mlperf " line before the progress lines)
            if not redraw and not reporter.showlongtestinfo:
                reporter.currentfspath = None

    def _short_reporter(self, nodeid: str) -> Any:
        """The terminal reporter when it shows ``mlperf .`` lines for a generated item."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or self.is_worker or not nodeid.startswith("mlperf::"):
            return None
        return reporter if reporter.showfspath and not reporter.showlongtestinfo else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        """Generated items: pytest's ``mlperf `` location prefix is written with the result
        letter, after the item's progress lines (not as a bare line before them)."""
        reporter = self._short_reporter(nodeid)
        if reporter is not None:  # a partial line is ended by the next progress line
            reporter.currentfspath = self.config.rootpath / "mlperf"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """``mlperf `` before the result letter when progress lines came in between (first:
        before the session files the report's records, and the terminal's letter)."""
        if report.when != "call" and report.passed:
            return  # no letter for a passed setup or teardown
        reporter = self._short_reporter(report.nodeid)
        if reporter is not None and reporter.currentfspath is None:
            reporter.write("mlperf ")
            reporter.currentfspath = self.config.rootpath / "mlperf"

    def eta_after(self, expected_s: float) -> float | None:
        """Seconds the planned items after the running one need: each as long as the
        finished ones took on average, else as this one's expected length; None: no plan."""
        if not self.planned:
            return None
        left = max(0, self.planned - len(self.index.records) - 1)
        times = [float(r["timing"]["item_s"]) for r in self.index.records if r.get("timing")]
        each = sum(times) / len(times) if times else expected_s
        return left * each

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The results table at the end of the session."""
        if not self.index.records:
            return
        terminalreporter.section("MLPerf results")
        for line in summary_table(self.index.records):
            terminalreporter.write_line(line)
        if self.index.error:
            terminalreporter.write_line(
                f"results.json could not be written: {self.index.error}", red=True
            )
        terminalreporter.write_line(f"results: {self.index.store.index_path}")
        preparations = read_preparations(self.index.store.root)
        if preparations:
            work = [w for p in preparations for w in p["work"]]
            prepared = [p["worker"] for p in preparations if p.get("phase") != "later"]
            terminalreporter.write_line(
                f"prepared {len(prepared)} time(s) ({', '.join(prepared)}); "
                f"work done: {'; '.join(work) if work else 'none (everything reused)'}"
            )
        rc = self.index.run_config
        if rc.baseline is not None:
            terminalreporter.write_line(
                f"baseline: {rc.baseline.describe()}, tolerance {rc.tolerance_pct:g} %"
            )
        if self.baseline_message:
            terminalreporter.write_line(self.baseline_message)
        if self.history_message:
            bad = self.history_message.startswith("history NOT")
            terminalreporter.write_line(self.history_message, red=bad)


def sigterm_as_interrupt() -> None:
    """SIGTERM (a CI job's timeout, `kill`) ends the session like Ctrl-C: the running item is
    recorded as interrupted, its harness process is stopped, results.json and the reports are
    written with every finished item. Installed when benchmark work first starts."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return  # someone else handles it

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
