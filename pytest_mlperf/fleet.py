"""The fleet view: the same items on many nodes, the median, each node's deviation, outliers.

Pure (no pytest): used by the xdist controller at the end of a session, by
``pytest-mlperf merge`` and ``pytest-mlperf fleet``.

A node is an outlier on an item when its metric is off the fleet median by more than
``max(k × MAD, tolerance)`` percent (MAD: the median of the nodes' absolute deviations,
in percent of the median). At least three nodes are needed to name one: with two, either
could be the odd one.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_mlperf.display import format_metric

DEFAULT_MAD_K = 3.0
MIN_NODES = 3

#: Host facts compared between nodes (those any node's host record has).
FACTS = (
    "system_name",
    "gpu_models",
    "gpu_count",
    "driver_version",
    "cuda_version",
    "fabric_manager_version",
    "fabric_manager_active",
    "mig_modes",
    "vbios_version",
    "cpu_model",
    "cpu",
    "cpu_count",
    "memory_kib",
    "docker_version",
    "python",
    "onnxruntime",
    "loadgen",
)


def node_name(record: Mapping[str, Any], default: str = "?") -> str:
    """The node a record ran on (its ``node`` tag), else ``default``."""
    node = record.get("node")
    if isinstance(node, Mapping) and node.get("name"):
        return str(node["name"])
    return default


def item_key(record: Mapping[str, Any]) -> str:
    """``bert-99[Offline-performance]`` (with the config_ver when not the default)."""
    key = f"{record['benchmark']}[{record['scenario']}-{record['mode']}]"
    config_ver = record.get("config_ver")
    return key if config_ver in (None, "default") else f"{key}/{config_ver}"


def lower_is_better(unit: str | None) -> bool:
    """Latency metrics (ns, ms) are better when lower; throughput when higher."""
    return unit in ("ns", "ms", "s")


def host_facts(host: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable facts of one host record (GPU list reduced to models, count, modes)."""
    facts: dict[str, Any] = {k: host.get(k) for k in FACTS if k in host}
    gpus = host.get("gpus")
    if isinstance(gpus, list) and gpus:
        names = sorted({str(g.get("name")) for g in gpus if isinstance(g, Mapping)})
        facts["gpu_models"] = ", ".join(names)
        facts["gpu_count"] = len(gpus)
        modes = sorted({str(g.get("mig_mode")) for g in gpus if isinstance(g, Mapping)})
        facts["mig_modes"] = ", ".join(modes)
        vbios = sorted({str(g["vbios_version"]) for g in gpus if g.get("vbios_version")})
        if vbios:
            facts["vbios_version"] = ", ".join(vbios)
    return facts


def host_differences(hosts: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Facts whose values differ between nodes: ``{"fact", "values": {node: value}}``.

    A fact one node reports and another does not (not probed there) counts as differing.
    """
    if len(hosts) < 2:
        return []
    facts = {node: host_facts(host) for node, host in hosts.items()}
    keys = [k for k in FACTS if any(k in f for f in facts.values())]
    out = []
    for key in keys:
        values = {node: f.get(key) for node, f in facts.items()}
        if len({repr(v) for v in values.values()}) > 1:
            out.append({"fact": key, "values": values})
    return out


def _item_view(
    key: str, by_node: Mapping[str, Mapping[str, Any]], k: float, tolerance_pct: float
) -> dict[str, Any]:
    """One item's row set: each node's metric and deviation, the median, the bound."""
    first = next(iter(by_node.values()))
    metric = first.get("metric") or {}
    unit = metric.get("unit")
    values = {
        node: float(r["metric"]["value"])
        for node, r in by_node.items()
        if (r.get("metric") or {}).get("value") is not None
    }
    view: dict[str, Any] = {
        "item": key,
        "benchmark": first["benchmark"],
        "scenario": first["scenario"],
        "mode": first["mode"],
        "metric": metric.get("name"),
        "unit": unit,
        "better": "lower" if lower_is_better(unit) else "higher",
        "median": None,
        "mad_pct": None,
        "bound_pct": None,
        "nodes": [],
        "outliers": [],
        "note": None,
    }
    if not values:
        view["note"] = "no node logged a metric"
    else:
        _judge_nodes(view, values, k, tolerance_pct)
    for node, r in by_node.items():
        if node not in values:
            view["nodes"].append(
                {
                    "node": node,
                    "value": None,
                    "deviation_pct": None,
                    "outlier": False,
                    "reason": f"no metric ({(r.get('verdict') or {}).get('outcome', '?')})",
                }
            )
    return view


def _judge_nodes(
    view: dict[str, Any], values: Mapping[str, float], k: float, tolerance_pct: float
) -> None:
    """Fill ``view`` with the median, MAD and bound of ``values`` and each node's entry:
    an outlier deviates beyond the bound, named only with ``MIN_NODES`` nodes or more."""
    key, name, unit = view["item"], view["metric"], view["unit"]
    median = statistics.median(values.values())
    view["median"] = median
    devs = {n: (v - median) / median * 100.0 if median else 0.0 for n, v in values.items()}
    mad = statistics.median(abs(d) for d in devs.values())
    bound = max(k * mad, tolerance_pct)
    view.update(mad_pct=mad, bound_pct=bound)
    enough = len(values) >= MIN_NODES
    if not enough:
        view["note"] = f"{len(values)} node(s) with a metric: at least {MIN_NODES} name an outlier"
    for node, value in values.items():
        dev = devs[node]
        outlier = enough and abs(dev) > bound
        entry: dict[str, Any] = {
            "node": node,
            "value": value,
            "deviation_pct": dev,
            "outlier": outlier,
            "reason": None,
        }
        if outlier:
            worse = (dev > 0) == (view["better"] == "lower")
            entry["reason"] = (
                f"fleet outlier: node {node} {'slower' if worse else 'faster'} than the "
                f"fleet on {key}: {name} {format_metric(value, unit)} is {dev:+.1f} % "
                f"off the median {format_metric(median, unit)} of {len(values)} nodes (bound "
                f"±{bound:.1f} % = max({k:g} × MAD {mad:.1f} %, tolerance {tolerance_pct:g} %))"
            )
            view["outliers"].append(node)
        view["nodes"].append(entry)


def fleet_view(
    records: Iterable[Mapping[str, Any]],
    hosts: Mapping[str, Mapping[str, Any]] | None = None,
    k: float = DEFAULT_MAD_K,
    tolerance_pct: float = 5.0,
) -> dict[str, Any]:
    """The fleet analysis of ``records`` (each tagged with its ``node``) and the nodes' hosts.

    Per item (performance mode; accuracy items carry no comparable speed): each node's
    metric, the median, each node's deviation and the outliers; plus the host facts that
    differ. A node that ran an item twice counts with its last record.
    """
    grouped: dict[str, dict[str, Mapping[str, Any]]] = {}
    nodes: list[str] = []
    for record in records:
        node = node_name(record)
        if node not in nodes:
            nodes.append(node)
        if record.get("mode") != "performance":
            continue
        grouped.setdefault(item_key(record), {})[node] = record
    items = [_item_view(key, by_node, k, tolerance_pct) for key, by_node in grouped.items()]
    for node in hosts or {}:
        if node not in nodes:
            nodes.append(node)
    outliers = [
        {"node": n["node"], "item": item["item"], "reason": n["reason"]}
        for item in items
        for n in item["nodes"]
        if n["outlier"]
    ]
    return {
        "nodes": nodes,
        "k": k,
        "tolerance_pct": tolerance_pct,
        "items": items,
        "outliers": outliers,
        "host_differences": host_differences(hosts or {}),
    }


def fleet_table(fleet: Mapping[str, Any]) -> list[str]:
    """The fleet view as text: one row per item × node, then the differing host facts."""
    from pytest_mlperf.report.terminal import text_table

    rows: list[list[str]] = []
    for item in fleet["items"]:
        unit = item["unit"]
        for n in item["nodes"]:
            rows.append(
                [
                    item["item"],
                    n["node"],
                    format_metric(n["value"], unit),
                    format_metric(item["median"], unit),
                    "-" if n["deviation_pct"] is None else f"{n['deviation_pct']:+.1f} %",
                    "-" if item["bound_pct"] is None else f"±{item['bound_pct']:.1f} %",
                    "OUTLIER" if n["outlier"] else (n["reason"] or "ok"),
                ]
            )
    lines = [
        f"{len(fleet['nodes'])} node(s): {', '.join(fleet['nodes'])}; outlier: off the median "
        f"by more than max({fleet['k']:g} × MAD, {fleet['tolerance_pct']:g} %)"
    ]
    if rows:
        lines.extend(
            text_table(("item", "node", "metric", "median", "deviation", "bound", "fleet"), rows)
        )
    else:
        lines.append("no performance items to compare")
    for item in fleet["items"]:
        if item["note"]:
            lines.append(f"{item['item']}: {item['note']}")
    for o in fleet["outliers"]:
        lines.append(o["reason"])
    for diff in fleet["host_differences"]:
        values = ", ".join(f"{node}={value!r}" for node, value in diff["values"].items())
        lines.append(f"host facts differ: {diff['fact']}: {values}")
    return lines


def merge_results(
    files: Sequence[tuple[str, Mapping[str, Any]]],
    k: float = DEFAULT_MAD_K,
    tolerance_pct: float = 5.0,
) -> dict[str, Any]:
    """One fleet ``results.json`` from per-node ones: ``(source, data)`` pairs.

    Each file's records are tagged with their node (the record's ``node`` tag, else the
    file's host name, else ``source``); a node may appear in one file only. Raises
    ValueError naming both sources when two files come from the same node.
    """
    items: list[dict[str, Any]] = []
    hosts: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    started: list[str] = []
    finished: list[str] = []
    for source, data in files:
        host = dict(data.get("host") or {})
        default = str(host.get("hostname") or source)
        names = set()
        for record in data.get("items", []):
            rec = dict(record)
            name = node_name(rec, default)
            if not isinstance(rec.get("node"), Mapping):
                rec["node"] = {"name": name, "hostname": host.get("hostname")}
            rec["merged_from"] = source
            names.add(name)
            items.append(rec)
        for node, node_host in (data.get("nodes") or {}).items():
            hosts[node] = dict(node_host)
        if not data.get("nodes"):
            for name in names or {default}:
                hosts[name] = host
        for name in names or {default}:
            if name in seen:
                raise ValueError(
                    f"node {name!r} is in both {seen[name]} and {source}: merge takes one "
                    "results.json per node (set MLPERF_NODE_NAME per node to tell them apart)"
                )
            seen[name] = source
        if data.get("started"):
            started.append(str(data["started"]))
        if data.get("finished"):
            finished.append(str(data["finished"]))
    first = files[0][1] if files else {}
    backends = sorted({str(d.get("backend")) for _, d in files})
    return {
        "schema_version": first.get("schema_version", 1),
        "run_id": "merged-" + "+".join(str(d.get("run_id")) for _, d in files),
        "started": min(started) if started else None,
        "finished": max(finished) if len(finished) == len(files) and finished else None,
        "backend": backends[0] if len(backends) == 1 else ",".join(backends),
        "system": first.get("system"),
        "host": first.get("host") or {},
        "settings": {**(first.get("settings") or {}), "merged_from": [s for s, _ in files]},
        "items": items,
        "nodes": hosts,
        "fleet": fleet_view(items, hosts, k, tolerance_pct),
    }
