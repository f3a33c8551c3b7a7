"""What the steps of :meth:`~pytest_mlperf.runner.ItemPipeline.run_item` hand each other
(data only). No pytest here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_mlperf.backends.base import RunOutcome
    from pytest_mlperf.baseline import Comparison
    from pytest_mlperf.checks import Verdict
    from pytest_mlperf.config import ItemSpec
    from pytest_mlperf.results.loadgen import ParsedLog


@dataclass
class ItemRun:
    """One item on its way: what it is, when it started, where its files go."""

    spec: ItemSpec
    nodeid: str
    fast: bool
    started: float
    #: the record fields that say which item ran where (``nodeid`` … ``fast``)
    identity: dict[str, Any]
    #: the system name the item's thresholds and baseline are looked up under
    system: str
    #: the item's directory once it is made (an earlier error is recorded under the run's)
    log_dir: Path | None = None


@dataclass(frozen=True)
class Measured:
    """The judged backend run and its logs, the run's provenance, the repeat summary and
    the record's measuring fields (``device_lock``, ``machine_load``, ``retarget``, ``ab``)."""

    run: RunOutcome
    parsed: ParsedLog
    provenance: dict[str, Any]
    extras: dict[str, Any]
    repeat: dict[str, Any] | None = None


@dataclass(frozen=True)
class Judged:
    """The verdict and what the gates add to the record."""

    verdict: Verdict
    threshold_text: str | None = None
    comparison: Comparison | None = None
    accuracy: dict[str, Any] | None = None
    #: the threshold as numbers (``threshold_bound``; performance items)
    bound: dict[str, Any] | None = None
    compliance: dict[str, Any] | None = None
    submission: dict[str, Any] | None = None
