"""The interface every backend implements."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pytest_mlperf.catalog import Benchmark, Variant

if TYPE_CHECKING:
    from pytest_mlperf.host.probe import HostRecord
    from pytest_mlperf.results.loadgen import ParsedLog

#: Receives one line of progress text for the terminal.
Progress = Callable[[str], None]


def no_progress(_line: str) -> None:
    """A :data:`Progress` that discards everything."""


@dataclass(frozen=True)
class RunRequest:
    """One benchmark×scenario×mode to run into ``outdir``."""

    benchmark: Benchmark
    variant: Variant
    scenario: str
    mode: str
    config_ver: str
    fast: bool
    outdir: Path
    overrides: Mapping[str, float] = field(default_factory=dict)
    #: a compliance test's run (``TEST01``): the backend runs the performance QSL in every mode
    compliance: str | None = None
    #: the audit run of a compliance test: ``audit.config`` settings LoadGen must read
    audit: Mapping[str, int] | None = None
    #: ``--mlperf-ab``: which side this run is, ``A`` (baseline) or ``B`` (candidate)
    ab_side: str | None = None


@dataclass
class RunOutcome:
    """What a backend did; the logs themselves are in ``log_dir``."""

    log_dir: Path
    settings: dict[str, Any]
    run_seconds: float
    calibration: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    #: Backend-specific facts for the record (``backend_details``), e.g. harness metadata.
    details: dict[str, Any] | None = None
    #: Compares the backend's own result files with the parsed LoadGen logs: notes.
    compare: Callable[[ParsedLog], list[str]] | None = None


@runtime_checkable
class Backend(Protocol):
    """A way to run MLPerf benchmarks: prepared once per session, then run per item."""

    name: str

    def system_name(self) -> str:
        """The system name thresholds are looked up under."""
        ...

    def describe(self) -> dict[str, Any]:
        """The host record: facts about the machine and software, for reports."""
        ...

    def supported_config_vers(self) -> Sequence[str]:
        """The config_vers this backend can run."""
        ...

    def host_record(self) -> HostRecord:
        """The probed host (GPUs, driver, fabric manager, CPU); for ``mlperf_host``."""
        ...

    def prepare(self, plan: Sequence[tuple[Benchmark, str]], progress: Progress) -> None:
        """Do the once-per-session work for the (benchmark, scenario) pairs to come."""
        ...

    def run(self, request: RunRequest, progress: Progress) -> RunOutcome:
        """Run one item; raise :class:`~pytest_mlperf.errors.BackendError` on failure."""
        ...

    def close(self) -> None:
        """Release what ``prepare`` acquired."""
        ...
