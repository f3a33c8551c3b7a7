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
    return props
