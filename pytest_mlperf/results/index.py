"""The run index: ``results.json``, every record of the run so far with the host, the
settings and the totals, rewritten atomically after each item. Pytest-free."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pytest_mlperf import __version__
from pytest_mlperf.checks import Outcome
from pytest_mlperf.errors import MlperfError
from pytest_mlperf.redact import redact_obj
from pytest_mlperf.results.store import RunStore, atomic_write_json
from pytest_mlperf.shared import read_preparations

if TYPE_CHECKING:
    from pytest_mlperf.config import RunConfig

RESULTS_SCHEMA_VERSION = 1
#: the outcomes counted in the totals, in the order results.json lists them
TOTALS = (
    Outcome.PASSED,
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.SKIPPED,
    Outcome.XFAILED,
    Outcome.INTERRUPTED,
)


class RunIndex:
    """The run's records (in report order), host, fleet nodes and fleet view: what
    ``results.json`` holds (the controller's; a worker's stays empty)."""

    def __init__(self, store: RunStore, run_config: RunConfig, backend_name: str) -> None:
        self.store = store
        self.run_config = run_config
        self.backend_name = backend_name
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.records: list[dict[str, Any]] = []
        self._host: dict[str, Any] = {}
        #: controller of a fleet run: each node's host record, and the fleet view at the end
        self.nodes: dict[str, dict[str, Any]] = {}
        self.fleet: dict[str, Any] | None = None
        #: why results.json could not be written during the run (the terminal summary says)
        self.error: str | None = None

    @property
    def host(self) -> dict[str, Any]:
        """The backend's host record (results.json, JUnit and HTML), secrets masked."""
        return self._host

    @host.setter
    def host(self, value: Mapping[str, Any]) -> None:
        self._host = redact_obj(value)

    def write(self, finished: bool) -> None:
        """Write ``results.json`` atomically with every record so far.

        The records (masked by ``build_record``) and the host (masked when set) are written
        as they are; only the rest is masked here.
        """
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
            "settings": redact_obj(settings_record(self.run_config)),
            "items": self.records,
            "totals": totals(self.records),
            "plugin_version": __version__,
            "preparations": redact_obj(read_preparations(self.store.root)),
        }
        if self.nodes:
            data["nodes"] = self.nodes
        if self.fleet is not None:
            data["fleet"] = self.fleet
        atomic_write_json(self.store.index_path, data, mask_secrets=False)

    def file_interrupted(self, record: dict[str, Any], finished: bool) -> None:
        """An interrupted item's record goes into results.json now: no report will carry it
        (``finished``: the session ends here, a second Ctrl-C)."""
        self.records.append(record)
        with contextlib.suppress(MlperfError):
            self.write(finished=finished)


def settings_record(rc: RunConfig) -> dict[str, Any]:
    """The run settings, for results.json and the HTML summary."""
    return {
        "config_ver": rc.config_ver or "per benchmark",
        "modes": list(rc.modes),
        "fast": rc.fast,
        "calibrate": rc.calibrate,
        "thresholds_file": str(rc.thresholds_file) if rc.thresholds_file else None,
        "baseline": str(rc.baseline.path) if rc.baseline else None,
        "baseline_run_id": rc.baseline.run_id if rc.baseline else None,
        "baseline_pooled": list(rc.baseline.pooled) if rc.baseline else [],
        "tolerance_pct": rc.tolerance_pct,
        "ab": rc.ab.to_dict() if rc.ab else None,
        "history": None
        if rc.history is None
        else {
            "store": rc.history.location,
            "judged": rc.history.judge,
            "ref": rc.history.ref,
            "compare_ref": rc.history.compare_ref,
            "commit": rc.history.commit,
            "window": rc.history.window,
            "significance": rc.history.significance,
        },
        "timeout_s": rc.timeout_s,
        "timeout_source": "--mlperf-timeout"
        if rc.timeout_s is not None
        else "per item: the benchmark data's timeouts_s (each item's settings)",
    }


def run_identity(index: RunIndex) -> dict[str, Any]:
    """The run's identity for JUnit suite properties (``mlperf/run/<key>``)."""
    rc = index.run_config
    return {
        "run_id": index.store.run_id,
        "backend": index.backend_name,
        "system": index.records[-1]["system"] if index.records else rc.system,
        "fast": rc.fast,
        "config_ver": rc.config_ver or "per benchmark",
        "plugin_version": __version__,
        **{f"total_{k}": v for k, v in totals(index.records).items()},
    }


def totals(records: list[dict[str, Any]]) -> dict[str, int]:
    """Items by verdict: ``items`` and one count per outcome (passed, failed, error, ...)."""
    counts = {"items": len(records)}
    for outcome in TOTALS:
        counts[outcome.value] = sum(1 for r in records if r["verdict"]["outcome"] == outcome)
    return counts
