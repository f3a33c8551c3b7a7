"""JUnit XML properties for CI dashboards: ``mlperf/<benchmark>/<scenario>/<mode>/<field>``.

The separator is ``/``, which no benchmark, scenario, mode or field contains (names like
``bert-99.9`` and ``result_90.00_percentile_latency_ns`` have dots), so a dashboard splits
every name into the same five parts. Fields are a fixed vocabulary (docs/results.md):
``metric``/``value``/``unit`` for any item, latencies in ms next to bounds in ms.
Run-level properties are ``mlperf/run/<field>`` and ``mlperf/host/<field>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_mlperf.display import ns_to_ms

#: Units of accuracy metrics in the reports (F1 and exact match are percentages).
ACCURACY_UNITS = {"F1": "%", "exact_match": "%"}
_PERCENTILES = {
    "result_90.00_percentile_latency_ns": "p90_latency_ms",
    "result_99.00_percentile_latency_ns": "p99_latency_ms",
}


def display_value(value: float | None, unit: str | None) -> tuple[float | None, str | None]:
    """A metric in the unit the reports show: ns latencies as ms, the rest unchanged."""
    if unit == "ns":
        return (None if value is None else round(ns_to_ms(value), 6)), "ms"
    return value, unit


def item_prefix(record: Mapping[str, Any]) -> str:
    """``mlperf/bert-99.9/Offline/performance``."""
    return f"mlperf/{record['benchmark']}/{record['scenario']}/{record['mode']}"


def junit_properties(record: Mapping[str, Any]) -> list[tuple[str, object]]:
    """The properties recorded for one item."""
    prefix = item_prefix(record)
    verdict = record["verdict"]
    props: list[tuple[str, object]] = [
        (f"{prefix}/validity", record["result_validity"] or "missing"),
        (f"{prefix}/verdict", verdict["outcome"]),
        (f"{prefix}/config_ver", record["config_ver"]),
        (f"{prefix}/fast", record["fast"]),
    ]
    if verdict.get("reasons"):
        props.append((f"{prefix}/reason", "; ".join(verdict["reasons"])))
    metric = record["metric"]
    accuracy = record.get("accuracy")
    if accuracy and accuracy.get("value") is not None:
        props += [
            (f"{prefix}/metric", accuracy["metric"]),
            (f"{prefix}/value", accuracy["value"]),
            (f"{prefix}/unit", ACCURACY_UNITS.get(accuracy["metric"], "1")),
        ]
    elif metric["name"] and metric["value"] is not None:
        value, unit = display_value(metric["value"], metric["unit"])
        props += [
            (f"{prefix}/metric", metric["name"]),
            (f"{prefix}/value", value),
            (f"{prefix}/unit", unit),
        ]
    if record.get("threshold"):
        props.append((f"{prefix}/threshold", record["threshold"]))
    bound = record.get("threshold_bound")
    if bound:
        props += [
            (f"{prefix}/threshold_operator", bound["operator"]),
            (f"{prefix}/threshold_value", bound["value"]),
            (f"{prefix}/threshold_unit", bound["unit"]),
        ]
    for key, name in _PERCENTILES.items():
        value = record["loadgen"].get(key)
        if value is not None:
            props.append((f"{prefix}/{name}", display_value(value, "ns")[0]))
    timing = record.get("timing") or {}
    if timing.get("run_s") is not None:
        props.append((f"{prefix}/run_s", timing["run_s"]))
    props += _baseline(prefix, record.get("baseline"))
    props += _accuracy(prefix, accuracy)
    props += _compliance(prefix, record.get("compliance"))
    props += _repeat(prefix, record.get("repeat"), metric["unit"])
    props += _ab(prefix, record.get("ab"))
    return props


def _ab(prefix: str, ab: Mapping[str, Any] | None) -> list[tuple[str, object]]:
    """``--mlperf-ab``: status, rounds, the paired ratio and its interval, each side's
    compared figures (``;``-separated, in the reports' unit)."""
    if not ab:
        return []
    props: list[tuple[str, object]] = [
        (f"{prefix}/ab_status", ab["status"]),
        (f"{prefix}/ab_rounds", ab["rounds"]),
    ]
    for key in ("ratio", "ci_low", "ci_high", "confidence", "tolerance_pct"):
        if ab.get(key) is not None:
            props.append((f"{prefix}/ab_{key}", ab[key]))
    for side in ("baseline", "candidate"):
        values = [display_value(r["value"], ab["unit"])[0] for r in ab[side]["runs"]]
        props.append((f"{prefix}/ab_{side}_values", ";".join(map(str, values))))
        if ab[side].get("fingerprint_id"):  # each side's fingerprint (results.json has it all)
            props.append((f"{prefix}/ab_{side}_fingerprint_id", ab[side]["fingerprint_id"]))
    return props


def _repeat(
    prefix: str, repeat: Mapping[str, Any] | None, unit: str | None
) -> list[tuple[str, object]]:
    """``--mlperf-repeat``: the count, the spread, and median/min/max in the metric's unit."""
    if not repeat:
        return []
    props: list[tuple[str, object]] = []
    for key in ("count", "median", "min", "max", "spread_pct"):
        value = repeat.get(key)
        if value is None:
            continue
        if key in ("median", "min", "max"):
            value = display_value(value, unit)[0]
        props.append((f"{prefix}/repeat_{key}", value))
    return props


def _baseline(prefix: str, baseline: Mapping[str, Any] | None) -> list[tuple[str, object]]:
    if not baseline:
        return []
    props: list[tuple[str, object]] = [(f"{prefix}/baseline_status", baseline["status"])]
    shown, _ = display_value(baseline["baseline_value"], baseline["unit"])
    for key, value in (
        ("baseline_value", shown),
        ("baseline_delta_pct", baseline["delta_pct"]),
        ("baseline_tolerance_pct", baseline["tolerance_pct"]),
    ):
        if value is not None:
            props.append((f"{prefix}/{key}", value))
    return props


def _accuracy(prefix: str, accuracy: Mapping[str, Any] | None) -> list[tuple[str, object]]:
    if not accuracy:
        return []
    props: list[tuple[str, object]] = [(f"{prefix}/accuracy_pass", accuracy["accuracy_pass"])]
    for m in accuracy["metrics"]:
        props.append((f"{prefix}/accuracy_{m['name']}", m["value"]))
        for key in ("threshold", "fp32_reference", "ratio"):
            if m[key] is not None:
                props.append((f"{prefix}/accuracy_{m['name']}_{key}", m[key]))
    return props


def _compliance(prefix: str, compliance: Mapping[str, Any] | None) -> list[tuple[str, object]]:
    if not compliance:
        return []
    props: list[tuple[str, object]] = [(f"{prefix}/compliance_passed", compliance["passed"])]
    acc, perf = compliance["accuracy"], compliance["performance"]
    for key in ("sampled", "matched", "mismatched"):
        props.append((f"{prefix}/compliance_accuracy_{key}", acc[key]))
    if perf.get("ratio") is not None:
        props.append((f"{prefix}/compliance_performance_ratio", perf["ratio"]))
    part3 = compliance.get("part3")
    if isinstance(part3, dict):
        props.append((f"{prefix}/compliance_part3_delta", part3["delta"]))
    return props


def _field(key: object) -> str:
    """A host key or check name as one path part (``/`` would split it)."""
    return str(key).replace("/", "_")


def host_properties(host: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flat ``mlperf/host/<key>`` properties: scalars as they are, GPUs and checks summarised;
    empty values are left out."""
    props: list[tuple[str, str]] = []
    for key, value in host.items():
        if isinstance(value, (str, int, float, bool)) and value != "":
            props.append((f"mlperf/host/{_field(key)}", str(value)))
    gpus = host.get("gpus")
    if isinstance(gpus, list) and gpus:
        names = sorted({str(g.get("name")) for g in gpus if isinstance(g, dict)})
        props.append(("mlperf/host/gpus", f"{len(gpus)} x {', '.join(names)}"))
    for req in host.get("requirements") or []:
        if isinstance(req, dict):
            props.append(
                (
                    f"mlperf/host/check_{_field(req.get('name'))}",
                    "ok" if req.get("ok") else f"FAILED: {req.get('found')}",
                )
            )
    return props


def run_properties(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``mlperf/run/<key>``: run id, backend, system, fast, config_ver, plugin version, totals."""
    return [(f"mlperf/run/{_field(k)}", str(v)) for k, v in run.items() if v is not None]
