"""The plugin layer's shared state: typed stash keys and the per-item record queue.

A leaf of the plugin layer: it imports no other plugin module, not even for types, so
``plugin``, ``session``, ``items`` and ``fixtures`` can all use it without importing each
other; :class:`SessionView` names what they reach through :data:`SESSION_KEY`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from pytest_mlperf.backends.base import Backend
    from pytest_mlperf.catalog import Catalog
    from pytest_mlperf.config import ItemSpec, RunConfig
    from pytest_mlperf.placement import Placement
    from pytest_mlperf.results.store import RunStore
    from pytest_mlperf.runner import ItemPipeline
    from pytest_mlperf.slurm import FleetSettings
    from pytest_mlperf.thresholds import Threshold, ThresholdTable


class SessionView(Protocol):
    """The registered session as items, fixtures and the backend maker use it
    (``session.MlperfSession`` is the implementation)."""

    run_config: RunConfig
    catalog: Catalog
    placement: Placement
    store: RunStore
    pipeline: ItemPipeline

    def backend(self) -> Backend:
        """The session's backend, made and prepared once."""
        ...


#: The parsed options, the benchmark catalog and the threshold table (once per process).
RUN_CONFIG_KEY: pytest.StashKey[tuple[RunConfig, Catalog, ThresholdTable]] = pytest.StashKey()
#: The entries of the user's --mlperf-thresholds file (checked against the run's system).
USER_THRESHOLDS_KEY: pytest.StashKey[list[Threshold]] = pytest.StashKey()
#: The items this run generates (its selection, or the node ids on the command line).
SPECS_KEY: pytest.StashKey[list[ItemSpec]] = pytest.StashKey()
#: The registered session object.
SESSION_KEY: pytest.StashKey[SessionView] = pytest.StashKey()
#: The fleet options (controller only; docs/fleet.md).
FLEET_KEY: pytest.StashKey[FleetSettings] = pytest.StashKey()
#: Result records an item produced (generated items and ``mlperf_run`` calls), not yet reported.
RECORDS_KEY: pytest.StashKey[list[dict[str, Any]]] = pytest.StashKey()
#: A failed marker bound, judged after the test body ran (see MlperfSession.pytest_runtest_call).
MARKER_FAILURE_KEY: pytest.StashKey[str] = pytest.StashKey()


def add_record(item: pytest.Item, record: Mapping[str, Any]) -> None:
    """Queue ``record`` for the item's next report (and so results.json and the reports)."""
    item.stash.setdefault(RECORDS_KEY, []).append(dict(record))
