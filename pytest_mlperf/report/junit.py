"""JUnit XML properties: ``mlperf.<benchmark>.<scenario>.<mode>.<name>`` for CI charts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def junit_properties(record: Mapping[str, Any]) -> list[tuple[str, object]]:
    """The properties recorded for one item."""
    prefix = f"mlperf.{record['benchmark']}.{record['scenario']}.{record['mode']}"
    props: list[tuple[str, object]] = [
        (f"{prefix}.result_validity", record["result_validity"] or "missing"),
        (f"{prefix}.verdict", record["verdict"]["outcome"]),
    ]
    metric = record["metric"]
    if metric["name"] and metric["value"] is not None:
        props.append((f"{prefix}.{metric['name']}", metric["value"]))
    if record.get("threshold"):
        props.append((f"{prefix}.threshold", record["threshold"]))
    for key in ("result_90.00_percentile_latency_ns", "result_99.00_percentile_latency_ns"):
        value = record["loadgen"].get(key)
        if value is not None and key != metric["name"]:
            props.append((f"{prefix}.{key}", value))
    baseline = record.get("baseline")
    if baseline:
        props.append((f"{prefix}.baseline_status", baseline["status"]))
        for key in ("baseline_value", "delta_pct", "tolerance_pct"):
            if baseline[key] is not None:
                props.append((f"{prefix}.{key}", baseline[key]))
    repeat = record.get("repeat")
    if repeat:
        for key in ("count", "median", "min", "max", "spread_pct"):
            if repeat.get(key) is not None:
                props.append((f"{prefix}.repeat_{key}", repeat[key]))
    accuracy = record.get("accuracy")
    if accuracy:
        props.append((f"{prefix}.accuracy_pass", accuracy["accuracy_pass"]))
        for m in accuracy["metrics"]:
            props.append((f"{prefix}.{m['name']}", m["value"]))
            for key in ("threshold", "fp32_reference", "ratio"):
                if m[key] is not None:
                    props.append((f"{prefix}.{m['name']}.{key}", m[key]))
    compliance = record.get("compliance")
    if compliance:
        props.append((f"{prefix}.compliance_passed", compliance["passed"]))
        acc, perf = compliance["accuracy"], compliance["performance"]
        for key in ("sampled", "matched", "mismatched"):
            props.append((f"{prefix}.accuracy_{key}", acc[key]))
        if perf.get("ratio") is not None:
            props.append((f"{prefix}.performance_ratio", perf["ratio"]))
        part3 = compliance.get("part3")
        if isinstance(part3, dict):
            props.append((f"{prefix}.part3_delta", part3["delta"]))
    return props


def host_properties(host: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flat ``mlperf.host.<key>`` properties: scalars as they are, GPUs and checks summarised."""
    props: list[tuple[str, str]] = []
    for key, value in host.items():
        if isinstance(value, (str, int, float, bool)) and value is not None:
            props.append((f"mlperf.host.{key}", str(value)))
    gpus = host.get("gpus")
    if isinstance(gpus, list) and gpus:
        names = sorted({str(g.get("name")) for g in gpus if isinstance(g, dict)})
        props.append(("mlperf.host.gpus", f"{len(gpus)} x {', '.join(names)}"))
    for req in host.get("requirements") or []:
        if isinstance(req, dict):
            props.append(
                (
                    f"mlperf.host.check.{req.get('name')}",
                    "ok" if req.get("ok") else f"FAILED: {req.get('found')}",
                )
            )
    return props


def add_host_properties(config: Any, host: Mapping[str, Any]) -> None:
    """Add the host record to the JUnit XML as test-suite properties (when --junitxml is on)."""
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    for name, value in host_properties(host):
        xml.add_global_property(name, value)
