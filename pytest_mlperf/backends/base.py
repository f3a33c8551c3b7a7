"""The interface every backend implements, and the optional capabilities it may declare.

:class:`Backend` is what the session calls on every backend. The optional protocols below
(``runtime_checkable``) are the rest of the contract: a backend that has one implements its
members, and callers ask with ``isinstance`` (never ``getattr``). What a caller does for a
backend without a capability is said on each protocol; the helpers below apply it.
"""

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


# -- optional capabilities: callers ask ``isinstance(backend, Capability)`` ------------------
@dataclass(frozen=True)
class AccuracyData:
    """What a backend says about an item's accuracy evaluation.

    ``fp32_reference`` is None when ``dataset`` is the benchmark's real data set: the
    benchmark file's published FP32 score and targets apply. A backend with its own
    evaluation set (the reference backend) gives the FP32 scores on that set per metric.
    """

    dataset: Path
    fp32_reference: Mapping[str, float] | None = None
    reference_source: str = ""
    precision: str | None = None


@runtime_checkable
class AccuracyProvider(Protocol):
    """A backend that can name the data set its accuracy logs are judged against.

    Without it an accuracy item is left unevaluated (xfailed) and compliance part III
    cannot run."""

    def accuracy_data(self, request: RunRequest, progress: Progress) -> AccuracyData | None:
        """The data set and FP32 reference for ``request``; None when it has none."""
        ...


@runtime_checkable
class PrepareOrder(Protocol):
    """Whether the processes of one host prepare one at a time (``serial_prepare`` True,
    what a backend without it gets) or concurrently (per-process state only)."""

    serial_prepare: bool


@runtime_checkable
class DeviceLocks(Protocol):
    """A backend that names the devices one measurement occupies (``cpu-0``, ``gpu-1``):
    the host-wide device locks. Without it: :class:`DeviceList`, else ``gpu-all``."""

    def lock_devices(self) -> Sequence[str]:
        """The lock names of this process's devices."""
        ...


@runtime_checkable
class DeviceList(Protocol):
    """A backend without :class:`DeviceLocks` that lists its GPUs (``devices``; None or
    ``all``: every GPU): one lock per GPU (``gpu-<id>``)."""

    devices: Sequence[str] | None


@runtime_checkable
class PerformanceQslAccuracy(Protocol):
    """Whether the backend's accuracy mode runs the data set the performance QSL holds
    (``accuracy_runs_performance_qsl``): then a compliance test may reuse the session's
    accuracy run (same ``qsl_idx``, same sample); without it, it runs its own."""

    accuracy_runs_performance_qsl: bool


@runtime_checkable
class ComplianceIndexMap(Protocol):
    """A backend whose evaluation set holds a selection of the performance QSL: maps QSL
    indexes to the data set's for scoring compliance samples (without it: the same)."""

    def compliance_index_map(self, request: RunRequest, progress: Progress) -> Mapping[int, int]:
        """Performance-QSL index → evaluation-set index."""
        ...


@runtime_checkable
class DryRunner(Protocol):
    """A backend that can say what its harness would do without running it
    (``--mlperf-dry-run``); without it the dry run is a usage error."""

    def dry_run(self, items: Sequence[tuple[str, str, str, str]], progress: Progress) -> list[str]:
        """One or more lines per (benchmark, scenario, mode, config_ver); ``skip:`` lines
        for items the harness would skip."""
        ...


#: Every optional capability, for docs and tests.
CAPABILITIES: tuple[type, ...] = (
    AccuracyProvider,
    PrepareOrder,
    DeviceLocks,
    DeviceList,
    PerformanceQslAccuracy,
    ComplianceIndexMap,
    DryRunner,
)


def prepares_serially(backend: Backend) -> bool:
    """:class:`PrepareOrder`'s answer; True for a backend that does not declare it."""
    return backend.serial_prepare if isinstance(backend, PrepareOrder) else True


def reuses_accuracy_run(backend: Backend) -> bool:
    """:class:`PerformanceQslAccuracy`'s answer; False for a backend that does not declare it."""
    return isinstance(backend, PerformanceQslAccuracy) and bool(
        backend.accuracy_runs_performance_qsl
    )


def audit_config_text(values: Mapping[str, int]) -> str:
    """An ``audit.config`` LoadGen reads (:attr:`RunRequest.audit`): ``*.*.key = value`` for
    every model and scenario."""
    lines = ["# written by pytest-mlperf for a compliance audit run"]
    lines += [f"*.*.{key} = {value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
