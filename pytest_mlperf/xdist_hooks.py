"""pytest-xdist's glue: the run id shared with the workers and, in a fleet run
(docs/fleet.md), the ``--tx`` specs per node, each item's logs and each node's host record
brought back to the controller, the nodes judged against each other and the fleet table."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlperf.checks import FAIL, Check, decide, verdict_from_dict
from pytest_mlperf.fleet import node_name
from pytest_mlperf.report_hooks import add_html_extras
from pytest_mlperf.results.store import RunStore, safe_part
from pytest_mlperf.shared import read_preparations
from pytest_mlperf.slurm import FleetSettings, parse_fleet_settings
from pytest_mlperf.stash import FLEET_KEY
from pytest_mlperf.transfer import pack_item, relocate_record, unpack_item

if TYPE_CHECKING:
    from pytest_mlperf.session import MlperfSession


def configure_fleet(config: pytest.Config, get: Callable[[str], str | bool | None]) -> None:
    """Controller, before xdist starts: parse the fleet options; with
    ``--mlperf-slurm-nodes``, one ``--tx`` per node (``--dist each`` unless given).

    Raises ConfigError (or pytest.UsageError) for what cannot work.
    """
    import os
    import sys

    if hasattr(config, "workerinput"):
        return
    backend = str(get("backend"))  # "auto" resolved by the plugin, through its hook
    settings = parse_fleet_settings(get, backend, os.environ)
    config.stash[FLEET_KEY] = settings
    if not settings.nodes:
        return
    if not config.pluginmanager.hasplugin("xdist"):
        raise pytest.UsageError(
            "--mlperf-slurm-nodes runs one pytest-xdist worker per node: install pytest-xdist"
        )
    option = config.option
    if getattr(option, "numprocesses", None) or getattr(option, "tx", None):
        raise pytest.UsageError(
            "--mlperf-slurm-nodes makes one worker per node itself: drop -n/--tx "
            f"(given: -n {option.numprocesses!r}, --tx {option.tx!r}), or drop "
            "--mlperf-slurm-nodes and give the srun --tx specs yourself (docs/fleet.md)"
        )
    option.tx = settings.tx(sys.executable)
    if option.dist == "no":
        option.dist = "each"


class XdistHooks:
    """Registered only when pytest-xdist is active: share the run id with workers; in a
    fleet run, bring each item's logs and each node's host record back to the controller
    and judge the nodes against each other (docs/fleet.md)."""

    def __init__(self, session: MlperfSession) -> None:
        self.session = session
        self.settings = session.config.stash.get(FLEET_KEY, FleetSettings())
        #: worker id → node name, from the --tx specs (for records of crashed workers)
        self.worker_nodes: dict[str, str] = {}

    def pytest_configure_node(self, node: Any) -> None:
        """Every worker writes into the controller's run (directly, or over xdist)."""
        node.workerinput["mlperf_run_id"] = self.session.store.run_id
        node.workerinput["mlperf_fleet"] = self.settings.enabled
        spec = getattr(getattr(node, "gateway", None), "spec", None)
        try:
            parts = shlex.split(getattr(spec, "python", None) or "")
        except ValueError:
            parts = []
        if "-w" in parts[:-1]:  # an srun spec: the node its worker runs on
            self.worker_nodes[node.gateway.id] = parts[parts.index("-w") + 1]

    # -- worker ---------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """A fleet worker packs each new record's item files into the report."""
        s = self.session
        tag = ("mlperf_node", s.node["name"])
        if s.is_worker and tag not in item.user_properties:  # JUnit: every report carries it
            item.user_properties.append(tag)
        report = yield
        records = getattr(report, "mlperf_records", None)
        if records and s.is_worker and s.fleet_worker:
            root = s.store.root
            transfers = []
            for record in records:
                node_paths = (record.get("transfer") or {}).get("node_paths") or {}
                item_dir = Path(node_paths.get("item_dir") or record.get("item_dir") or root)
                inside = item_dir != root and root in item_dir.parents
                payload = pack_item(root, item_dir) if inside else {"files": [], "bytes": 0}
                transfers.append({"root": str(root), "payload": payload})
            report.mlperf_transfer = transfers  # type: ignore[attr-defined]
        return report

    def pytest_mlperf_result_ready(self, record: dict[str, Any], nodeid: str) -> None:
        """A fleet worker's record names where its logs will be on the controller (its
        failure text too); where they are on the node stays in ``transfer.node_paths``."""
        s = self.session
        if s.fleet_worker:
            controller = RunStore(s.run_config.results_dir, s.store.run_id).root
            dest = controller / "nodes" / safe_part(s.node["name"])
            relocate_record(record, str(s.store.root), dest, {})

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """A fleet worker hands its preparations back and removes its node-local scratch."""
        s = self.session
        if not (s.is_worker and s.fleet_worker):
            return
        import shutil

        output = getattr(self.session.config, "workeroutput", None)
        if output is not None:
            output["mlperf_node"] = s.node
            output["mlperf_preparations"] = read_preparations(s.store.root)
        shutil.rmtree(s.store.root.parent, ignore_errors=True)

    # -- controller -----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Write a worker's transferred logs under ``<run>/nodes/<node>/`` and point its
        records there (before the session files them); remember each node's host."""
        s = self.session
        records = getattr(report, "mlperf_records", None)
        if s.is_worker or not records:
            return
        name = node_name(records[0], self.worker_nodes.get(_gateway_id(report), "?"))
        host = getattr(report, "mlperf_host", None)
        if self.settings.enabled and isinstance(host, dict):
            s.index.nodes[name] = host
        transfers = getattr(report, "mlperf_transfer", None)
        if not transfers:
            return
        dest = s.store.root / "nodes" / safe_part(name)
        for record, transfer in zip(records, transfers, strict=False):
            try:
                unpack_item(dest, transfer["payload"])
            except OSError as exc:
                record.setdefault("warnings", []).append(f"logs not copied back: {exc}")
            relocate_record(record, transfer["root"], dest, transfer["payload"])
        del report.mlperf_transfer
        if s.config.pluginmanager.hasplugin("html"):
            ours = len(records)
            report.extras = list(getattr(report, "extras", []))[:-ours]  # type: ignore[attr-defined]
            add_html_extras(s.config, report, records)

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """A fleet worker's preparations join the controller's log (as ``gwN@node``)."""
        output = getattr(node, "workeroutput", None) or {}
        entries = output.get("mlperf_preparations") or []
        name = (output.get("mlperf_node") or {}).get("name", "?")
        if not entries:
            return
        import json

        path = self.session.store.root / ".state" / "preparations.jsonl"
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                for entry in entries:
                    fh.write(
                        json.dumps({**entry, "worker": f"{entry.get('worker')}@{name}"}) + "\n"
                    )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """When every node is done: the fleet view; under the gate, outliers fail."""
        result = yield
        s = self.session
        if s.is_worker or not self.settings.enabled or not s.index.records:
            return result
        from pytest_mlperf.fleet import fleet_view

        for record in s.index.records:  # a crashed worker's record is made here: name its node
            node = record.get("node") or {}
            if node.get("worker") is None and record.get("worker") in self.worker_nodes:
                record["node"] = {**node, "name": self.worker_nodes[record["worker"]]}
        s.index.fleet = fleet_view(
            s.index.records, s.index.nodes, self.settings.mad_k, s.run_config.tolerance_pct
        )
        if self.settings.gate:
            for outlier in s.index.fleet["outliers"]:
                self._fail_outlier(outlier)
        return result

    def _fail_outlier(self, outlier: Mapping[str, Any]) -> None:
        """The node's record of that item fails with the reason; one failed test says so."""
        from pytest_mlperf.fleet import item_key

        s = self.session
        nodeid = None
        for record in s.index.records:
            if node_name(record) == outlier["node"] and item_key(record) == outlier["item"]:
                reason = outlier["reason"]
                check = Check(
                    "fleet", outlier["node"], "within the fleet bound", FAIL, reason, reason=reason
                )
                prior = verdict_from_dict(record["verdict"])
                record["verdict"] = decide([check], prior).to_dict()
                nodeid = record["nodeid"]
        for when, outcome in (("call", "failed"), ("teardown", "passed")):
            report = pytest.TestReport(
                nodeid=f"{nodeid or outlier['item']}::fleet[{outlier['node']}]",
                location=("mlperf", None, f"fleet[{outlier['node']}] {outlier['item']}"),
                keywords={},
                outcome=outcome,  # type: ignore[arg-type]
                longrepr=outlier["reason"] if outcome == "failed" else None,
                when=when,  # type: ignore[arg-type]
                user_properties=[("mlperf_node", outlier["node"])],
            )
            s.config.hook.pytest_runtest_logreport(report=report)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The fleet table: each item's metric per node, the median, each node's deviation."""
        fleet = self.session.index.fleet
        if not fleet:
            return
        from pytest_mlperf.fleet import fleet_table

        terminalreporter.section("MLPerf fleet")
        for line in fleet_table(fleet):
            red = line.startswith(("fleet outlier", "host facts differ"))
            terminalreporter.write_line(line, red=red)


def _gateway_id(report: pytest.TestReport) -> str:
    return str(getattr(getattr(getattr(report, "node", None), "gateway", None), "id", ""))
