"""Plain-text tables for the terminal summary and failure messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_mlperf.display import (
    check_word,
    figure_text,
    format_accuracy,
    format_metric,
    ms_text,
    outcome_word,
)

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


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns with a dashed rule under the header."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines.extend(fmt.format(*row) for row in rows)
    return [line.rstrip() for line in lines]


#: Units shown for accuracy metrics (F1 and exact match are percentages, DICE a fraction).
ACCURACY_UNITS = {"F1": "%", "exact_match": "%"}


def summary_row(record: Mapping[str, Any]) -> list[str]:
    """One row of the summary table for a result record (accuracy items: their metric)."""
    metric = record["metric"]
    unit = metric["unit"]
    value = metric["value"]
    accuracy = record.get("accuracy")
    if accuracy:
        metric = {"name": accuracy["metric"]}
        shown = format_accuracy(accuracy["value"])
        unit = ACCURACY_UNITS.get(accuracy["metric"], "")
    elif unit == "ns":
        # LoadGen's key says _ns; the column shows ms, so the name loses its unit suffix
        metric = {"name": display_name(metric["name"])}
        shown, unit = ("-" if value is None else ms_text(value)), "ms"
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
        outcome_word(record["verdict"]["outcome"])
        + (" (reused)" if (record.get("provenance") or {}).get("status") == "reused" else ""),
    ]


def display_name(name: str | None) -> str | None:
    """``result_90.00_percentile_latency_ns`` → ``result_90.00_percentile_latency`` (shown in ms)."""
    if name and name.endswith("_ns"):
        return name[: -len("_ns")]
    return name


def reason_line(record: Mapping[str, Any]) -> str:
    """Why an item did not pass, on one line: pytest's short summary shows the first line
    after the node id (which names the item), so the reason comes first."""
    verdict = record["verdict"]
    return "; ".join(verdict.get("reasons") or []) or verdict["outcome"]


def baseline_cells(record: Mapping[str, Any]) -> list[str]:
    """The baseline value (same unit as the value column) and the change, e.g. ``-7.9 % REGRESSED``."""
    b = record.get("baseline")
    if not b:
        return ["-", "-"]
    base = b["baseline_value"]
    shown = "-" if base is None else figure_text(base, b["unit"])
    if b["status"] == "skipped" or b["delta_pct"] is None:
        return [shown, "skipped"]
    if b["status"] == "inconclusive":
        return [shown, f"{b['delta_pct']:+.1f} % inconclusive"]
    word = "REGRESSED" if b["status"] == "regressed" else b["status"]
    return [shown, f"{b['delta_pct']:+.1f} % {word}"]


def repeat_cells(record: Mapping[str, Any]) -> list[str]:
    """``--mlperf-repeat``: the runs and their range, e.g. ``3``, ``250.10-262.00 (4.7 %)``."""
    r = record.get("repeat")
    if not r or r.get("min") is None:
        return ["-", "-"]
    unit = r.get("unit")
    spread = r.get("spread_pct")
    low, high = figure_text(r["min"], unit), figure_text(r["max"], unit)
    return [str(r["count"]), f"{low}-{high} ({spread:.1f} %)"]


def item_notes(record: Mapping[str, Any]) -> list[str]:
    """What a verdict alone does not say: an INVALID run accepted (and why), a Server
    target the plugin stepped down after an INVALID run at its own choice."""
    notes = []
    validity = next(
        (c for c in record["verdict"].get("checks") or [] if c.get("name") == "validity"), None
    )
    if record.get("result_validity") == "INVALID" and validity and validity.get("passed"):
        notes.append(f"INVALID {validity.get('detail') or 'accepted'}")
    retarget = record.get("retarget")
    if retarget:
        notes.append(
            f"target stepped down {retarget['from_qps']:g} -> {retarget['to_qps']:g}/s "
            f"after INVALID at the plugin's choice ({retarget['why']}); rerun once"
        )
    return notes


def node_label(record: Mapping[str, Any], names: bool, workers: bool) -> str:
    """The node (and/or xdist worker) an item ran on, for the node column."""
    node = record.get("node") or {}
    parts = [str(node.get("name") or "-")] if names else []
    if workers:
        parts.append(str(record.get("worker") or node.get("worker") or "-"))
    return "/".join(parts)


def node_columns(records: Sequence[Mapping[str, Any]]) -> tuple[bool, bool]:
    """Whether the records came from more than one node, and from more than one worker."""
    names = {(r.get("node") or {}).get("name") for r in records}
    workers = {r.get("worker") or (r.get("node") or {}).get("worker") for r in records}
    return len(names) > 1, len(workers) > 1


def summary_table(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The end-of-session table: one row per item (with baseline columns when compared,
    and runs/range columns with ``--mlperf-repeat``; the value is then the median run's);
    a node column when the items ran on more than one node or worker, a note column when
    an item's verdict needs a word (an INVALID accepted, a target stepped down)."""
    rows = [summary_row(r) for r in records]
    header: tuple[str, ...] = COLUMNS
    names, workers = node_columns(records)
    if names or workers:
        rows = [[node_label(r, names, workers), *row] for row, r in zip(rows, records, strict=True)]
        header = ("node", *header)
    if any(r.get("baseline") for r in records):
        rows = [[*row, *baseline_cells(r)] for row, r in zip(rows, records, strict=True)]
        header = (*header, "baseline", "change")
    if any(r.get("repeat") for r in records):
        rows = [[*row, *repeat_cells(r)] for row, r in zip(rows, records, strict=True)]
        header = (*header, "runs", "range (spread)")
    notes = [item_notes(r) for r in records]
    if any(notes):
        rows = [[*row, "; ".join(n)] for row, n in zip(rows, notes, strict=True)]
        header = (*header, "note")
    return text_table(header, rows)


ACCURACY_COLUMNS = ("accuracy", "value", "threshold", "FP32 reference", "ratio", "pass")


def accuracy_rows(accuracy: Mapping[str, Any]) -> list[list[str]]:
    """One row per accuracy metric: value, threshold, FP32 reference, ratio, pass."""
    return [
        [
            m["name"],
            format_accuracy(m["value"]),
            format_accuracy(m["threshold"]),
            format_accuracy(m["fp32_reference"]),
            "-" if m["ratio"] is None else f"{m['ratio']:.4f}",
            "-" if m["pass"] is None else ("ok" if m["pass"] else "FAIL"),
        ]
        for m in accuracy["metrics"]
    ]


def accuracy_table(accuracy: Mapping[str, Any]) -> list[str]:
    """Every accuracy metric of a record, with where the FP32 reference comes from."""
    lines = text_table(ACCURACY_COLUMNS, accuracy_rows(accuracy))
    details = [
        f"precision {accuracy['precision']}" if accuracy.get("precision") else "",
        f"target {accuracy['target_ratio'] * 100:g} % of FP32"
        if accuracy.get("target_ratio")
        else "",
        f"FP32 reference: {accuracy['reference_source']}"
        if accuracy.get("reference_source")
        else "",
        f"data set {accuracy['dataset']}" if accuracy.get("dataset") else "",
    ]
    lines.append("; ".join(d for d in details if d))
    return lines


def failure_text(record: Mapping[str, Any]) -> str:
    """The readable failure message: the checks table, reasons, advice and where the logs are."""
    metric = record["metric"]
    shown = f"{metric['name'] or '-'} = {format_metric(metric['value'], metric['unit'])}"
    accuracy = record.get("accuracy")
    if accuracy:
        unit = ACCURACY_UNITS.get(accuracy["metric"], "")
        shown = f"{accuracy['metric']} = {format_accuracy(accuracy['value'])} {unit}".rstrip()
    lines = [
        reason_line(record),
        f"{record['benchmark']} {record['scenario']} {record['mode']} "
        f"({record['backend']}, system {record['system']}, config_ver {record['config_ver']}"
        f"{', fast' if record['fast'] else ''})",
        f"metric: {shown}",
        "",
    ]
    checks = record["verdict"]["checks"]
    rows = [[c["name"], c["value"], c["bound"], check_word(c), c.get("detail", "")] for c in checks]
    lines.extend(text_table(("check", "value", "expected", "result", "detail"), rows))
    if record["invalid_reasons"]:
        lines.append("")
        lines.append("INVALID because:")
        lines.extend(f"  - [{r['code']}] {r['message']}" for r in record["invalid_reasons"])
    if record.get("accuracy"):
        lines.append("")
        lines.extend(accuracy_table(record["accuracy"]))
    if record.get("advice"):
        lines.append("LoadGen advice: " + " ".join(record["advice"]))
    for error in record.get("errors") or []:
        lines.append(f"error: {error}")
    lines.append(f"logs: {record['log_dir']}")
    return "\n".join(lines)
