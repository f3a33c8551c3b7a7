"""pytest-html integration: a summary section and per-item extras (metrics, log links)."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_mlperf.report.terminal import COLUMNS, summary_row
from pytest_mlperf.verdict import format_metric

CHECK_COLUMNS = ("check", "value", "expected", "result", "detail")
_STYLE = (
    "<style>table.mlperf{border-collapse:collapse;margin:6px 0}"
    "table.mlperf td,table.mlperf th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    ".mlperf-fail{color:#b00;font-weight:bold}.mlperf-pass{color:#070}</style>"
)


def _cells(row: Sequence[Any], tag: str = "td") -> str:
    return "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in row)


def summary_html(
    records: Sequence[Mapping[str, Any]], host: Mapping[str, Any], run_dir: str
) -> str:
    """The 'MLPerf results' section of the report summary."""
    rows = "".join(f"<tr>{_cells(summary_row(r))}</tr>" for r in records)
    host_rows = "".join(f"<tr>{_cells((k, v))}</tr>" for k, v in host.items())
    return (
        f"{_STYLE}<h2>MLPerf results</h2>"
        f"<p>Results directory: <code>{html.escape(run_dir)}</code></p>"
        f'<table class="mlperf" id="mlperf-summary"><tr>{_cells(COLUMNS, "th")}</tr>{rows}</table>'
        f'<h3>Host</h3><table class="mlperf" id="mlperf-host">{host_rows}</table>'
    )


def item_html(record: Mapping[str, Any], report_dir: Path | None) -> str:
    """Per-item block: checks, key LoadGen figures, INVALID reasons, links to the logs."""
    metric = record["metric"]
    checks = "".join(
        "<tr>"
        + _cells((c["name"], c["value"], c["bound"]))
        + f'<td class="{"mlperf-pass" if c["passed"] else "mlperf-fail"}">'
        + ("ok" if c["passed"] else "FAIL")
        + f"</td><td>{html.escape(c.get('detail', ''))}</td></tr>"
        for c in record["verdict"]["checks"]
    )
    figures = [("metric", f"{metric['name']} = {format_metric(metric['value'], metric['unit'])}")]
    figures += [(k, v) for k, v in sorted(record["loadgen"].items()) if k.startswith("result_")]
    figure_rows = "".join(f"<tr>{_cells(row)}</tr>" for row in figures)
    reasons = "".join(
        f"<li>[{html.escape(r['code'])}] {html.escape(r['message'])}</li>"
        for r in record["invalid_reasons"]
    )
    log_dir = Path(record["log_dir"])
    links = []
    item_dir = Path(record.get("item_dir") or log_dir)
    for name in record["files"] + ["result.json"]:
        target = (item_dir if name == "result.json" else log_dir) / name
        href = os.path.relpath(target, report_dir) if report_dir else target.as_uri()
        links.append(f'<a href="{html.escape(href)}">{html.escape(name)}</a>')
    return (
        f'{_STYLE}<div class="mlperf-item"><table class="mlperf mlperf-checks">'
        f"<tr>{_cells(CHECK_COLUMNS, 'th')}</tr>{checks}</table>"
        + (f"<p>INVALID because:</p><ul>{reasons}</ul>" if reasons else "")
        + f'<table class="mlperf mlperf-metrics">{figure_rows}</table>'
        + f"<p>Logs: {' · '.join(links)}</p></div>"
    )
