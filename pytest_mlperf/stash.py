"""The plugin layer's shared state: typed stash keys and the per-item record queue.

A leaf of the plugin layer: it imports no other plugin module at run time, so ``plugin``,
``session``, ``items`` and ``fixtures`` can all use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_mlperf.catalog import Catalog
    from pytest_mlperf.config import ItemSpec, RunConfig
    from pytest_mlperf.session import MlperfSession
    from pytest_mlperf.slurm import FleetSettings
    from pytest_mlperf.thresholds import Threshold, ThresholdTable

#: The parsed options, the benchmark catalog and the threshold table (once per process).
RUN_CONFIG_KEY: pytest.StashKey[tuple[RunConfig, Catalog, ThresholdTable]] = pytest.StashKey()
#: The entries of the user's --mlperf-thresholds file (checked against the run's system).
USER_THRESHOLDS_KEY: pytest.StashKey[list[Threshold]] = pytest.StashKey()
#: The items this run generates (its selection, or the node ids on the command line).
SPECS_KEY: pytest.StashKey[list[ItemSpec]] = pytest.StashKey()
#: The registered session object.
SESSION_KEY: pytest.StashKey[MlperfSession] = pytest.StashKey()
#: The fleet options (controller only; docs/fleet.md).
FLEET_KEY: pytest.StashKey[FleetSettings] = pytest.StashKey()
#: Result records an item produced (generated items and ``mlperf_run`` calls), not yet reported.
RECORDS_KEY: pytest.StashKey[list[dict[str, Any]]] = pytest.StashKey()
#: A failed marker bound, judged after the test body ran (see MlperfSession.pytest_runtest_call).
MARKER_FAILURE_KEY: pytest.StashKey[str] = pytest.StashKey()


def add_record(item: pytest.Item, record: Mapping[str, Any]) -> None:
    """Queue ``record`` for the item's next report (and so results.json and the reports)."""
    item.stash.setdefault(RECORDS_KEY, []).append(dict(record))
