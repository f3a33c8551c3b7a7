"""Plain-text tables for the terminal summary and failure messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_mlperf.verdict import format_metric

COLUMNS = (
    "benchmark",
    "scenario",
    "mode",
    "validity",
    "metric",
    "value",
    "unit",
    "threshold",
    "verdict",
)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines.extend(fmt.format(*row) for row in rows)
    return [line.rstrip() for line in lines]


def summary_row(record: Mapping[str, Any]) -> list[str]:
    """One row of the summary table for a result record."""
    metric = record["metric"]
    unit = metric["unit"]
    value = metric["value"]
    if unit == "ns" and value is not None:
        shown, unit = f"{value / 1e6:.3f}", "ms"
    else:
        shown = "-" if value is None else f"{value:.2f}"
    return [
        record["benchmark"],
        record["scenario"],
        record["mode"],
        record["result_validity"] or "-",
        metric["name"] or "-",
        shown,
        unit or "-",
        record.get("threshold") or "-",
        record["verdict"]["outcome"].upper(),
    ]


def summary_table(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The end-of-session table: one row per item."""
    return _table(COLUMNS, [summary_row(r) for r in records])


def failure_text(record: Mapping[str, Any]) -> str:
    """The readable failure message: the checks table, reasons, advice and where the logs are."""
    metric = record["metric"]
    lines = [
        f"{record['benchmark']} {record['scenario']} {record['mode']} "
        f"({record['backend']}, system {record['system']}, config_ver {record['config_ver']}"
        f"{', fast' if record['fast'] else ''})",
        f"metric: {metric['name'] or '-'} = {format_metric(metric['value'], metric['unit'])}",
        "",
    ]
    checks = record["verdict"]["checks"]
    rows = [
        [c["name"], c["value"], c["bound"], "ok" if c["passed"] else "FAIL", c.get("detail", "")]
        for c in checks
    ]
    lines.extend(_table(("check", "value", "expected", "result", "detail"), rows))
    if record["invalid_reasons"]:
        lines.append("")
        lines.append("INVALID because:")
        lines.extend(f"  - [{r['code']}] {r['message']}" for r in record["invalid_reasons"])
    if record.get("advice"):
        lines.append("LoadGen advice: " + " ".join(record["advice"]))
    for error in record.get("errors") or []:
        lines.append(f"error: {error}")
    lines.append(f"logs: {record['log_dir']}")
    return "\n".join(lines)
