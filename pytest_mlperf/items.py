"""The generated pytest item: one benchmark×scenario×mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlperf.catalog import RUN_MODES
from pytest_mlperf.checks import Outcome
from pytest_mlperf.config import ItemSpec
from pytest_mlperf.errors import ItemFailed, MlperfError, RunFailed
from pytest_mlperf.report.junit import junit_properties
from pytest_mlperf.report.terminal import failure_text
from pytest_mlperf.results.record import MlperfResult
from pytest_mlperf.stash import add_record

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from pytest_mlperf.stash import SessionView


class MlperfCollector(pytest.Collector):
    """Holds the generated items; its node id is ``mlperf``."""

    def __init__(self, *, runner: SessionView, specs: list[ItemSpec], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner = runner
        self.specs = specs

    def collect(self) -> list[MlperfItem]:
        """One item per spec."""
        return [
            MlperfItem.from_parent(self, name=s.name, spec=s, runner=self.runner)
            for s in self.specs
        ]


class MlperfItem(pytest.Item):
    """Runs one benchmark×scenario×mode through the session's backend and judges it."""

    def __init__(self, *, spec: ItemSpec, runner: SessionView, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.runner = runner
        self.result: MlperfResult | None = None
        for marker in ("mlperf", spec.variant.name, spec.variant.family, spec.scenario, spec.mode):
            self.add_marker(marker)
        if spec.mode not in RUN_MODES:
            self.add_marker("compliance")
        if runner.run_config.split == "none":
            # needs the whole machine: with `--dist loadgroup` these items share one worker
            self.add_marker(pytest.mark.xdist_group(name=f"mlperf-{runner.placement.host_key}"))

    def setup(self) -> None:
        """Make and prepare the session's backend (once): setup errors are item errors."""
        try:
            self.runner.backend()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM during preparation (model build...)
            self.runner.pipeline.record_interrupted(self.spec, self.nodeid)
            raise
        except MlperfError as exc:
            self.result = self.runner.pipeline.error_result(self.spec, self.nodeid, exc)
            add_record(self, self.result.record)
            raise pytest.fail.Exception(str(exc), pytrace=False) from None

    def runtest(self) -> None:
        """Run, record, then pass, xfail or fail on the verdict."""
        try:
            self.result = self.runner.pipeline.run_item(self.spec, self.nodeid)
        except RunFailed as exc:
            self.result = MlperfResult(exc.result.record)  # the same record, typed
            add_record(self, exc.result.record)
            raise
        add_record(self, self.result.record)
        self.user_properties.extend(junit_properties(self.result.record))
        verdict = self.result.record["verdict"]
        if verdict["outcome"] == Outcome.XFAILED:
            pytest.xfail("; ".join(verdict["reasons"]))
        if verdict["outcome"] == Outcome.SKIPPED:  # -rs shows a location, not the item: name it
            pytest.skip(f"{self.name}: " + "; ".join(verdict["reasons"]))
        if verdict["outcome"] != Outcome.PASSED:
            raise ItemFailed(self.result)

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        """A metrics table for failed checks; a one-line reason for known errors."""
        exc = excinfo.value
        if isinstance(exc, ItemFailed):
            return failure_text(exc.result.record)
        if isinstance(exc, RunFailed) and isinstance(exc.cause, MlperfError):
            return f"{type(exc.cause).__name__}: {exc.cause}\nlogs: {exc.result.record['log_dir']}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """Location shown in reports."""
        return self.path, None, f"mlperf: {self.name}"
