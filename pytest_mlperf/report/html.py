"""pytest-html integration: a summary section (run settings, every item with its value,
threshold, baseline and verdict, the host) and per-item extras (checks, metrics, latency
plots embedded as PNG data URIs, log links). Nothing is loaded from the network."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_mlperf.checks import Outcome
from pytest_mlperf.display import (
    NOT_A_PROBLEM,
    check_word,
    display_unit,
    format_metric,
)
from pytest_mlperf.report.plots import TRACE, item_plots
from pytest_mlperf.report.terminal import (
    ACCURACY_COLUMNS,
    COLUMNS,
    accuracy_rows,
    baseline_cells,
    item_notes,
    node_columns,
    node_label,
    summary_row,
)

CHECK_COLUMNS = ("check", "value", "expected", "result", "detail")
_STYLE = (
    "<style>table.mlperf{border-collapse:collapse;margin:6px 0}"
    "table.mlperf td,table.mlperf th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    ".mlperf-fail{color:#b00;font-weight:bold}.mlperf-pass{color:#070}"
    ".mlperf-skip{color:#a60}img.mlperf-plot{max-width:100%;margin:4px 8px 4px 0}</style>"
)
SUMMARY_COLUMNS = (*COLUMNS[:-1], "baseline", "change", COLUMNS[-1], "reason")
#: the verdict cell's class by the record's outcome (any other outcome: mlperf-fail); keyed
#: by the outcome, not the word shown, which may carry a note such as "PASSED (reused)"
_OUTCOME_CLASS = {
    Outcome.PASSED: "mlperf-pass",
    Outcome.SKIPPED: "mlperf-skip",
    Outcome.XFAILED: "mlperf-skip",
}


def _cells(row: Sequence[Any], tag: str = "td") -> str:
    return "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in row)


def _summary_row(record: Mapping[str, Any], nodes: tuple[bool, bool] = (False, False)) -> str:
    row = summary_row(record)
    cells = [*row[:-1], *baseline_cells(record)]
    if any(nodes):  # more than one node or worker: name it
        cells = [node_label(record, *nodes), *cells]
    css = _OUTCOME_CLASS.get(record["verdict"]["outcome"], "mlperf-fail")
    verdict = f'<td class="{css}">{html.escape(row[-1])}</td>'
    return f"<tr>{_cells(cells)}{verdict}{reason_cell(record)}</tr>"


def reason_cell(record: Mapping[str, Any]) -> str:
    """The items table's last column: why the item did not pass; for one that did, what
    its verdict alone does not say (an INVALID accepted and why, a target stepped down)."""
    verdict = record["verdict"]
    if verdict["outcome"] == Outcome.PASSED:
        reasons = "; ".join(item_notes(record))
    else:
        reasons = "; ".join([*(verdict.get("reasons") or []), *item_notes(record)])
    return f'<td class="mlperf-reason">{html.escape(reasons)}</td>'


def report_title(records: Sequence[Mapping[str, Any]], run_id: str, backend: str) -> str:
    """The page title: ``MLPerf bert-99, 3d-unet-99 (reference, reference-cpu): 2 failed of
    5 - run 20261201-...``; the run's benchmarks, where it ran, its outcome and its id."""
    benchmarks = ", ".join(dict.fromkeys(r["benchmark"] for r in records)) or "no items"
    system = records[-1]["system"] if records else "-"
    bad = sum(1 for r in records if r["verdict"]["outcome"] not in NOT_A_PROBLEM)
    outcome = f"{bad} not passed of {len(records)}" if bad else f"{len(records)} passed"
    return f"MLPerf {benchmarks} ({backend}, {system}): {outcome} - run {run_id}"


def self_contained_note(self_contained: bool) -> str:
    """Guidance for CI artefacts, shown when the report keeps its styles in ``assets/``."""
    if self_contained:
        return ""
    return (
        '<p class="mlperf-note" id="mlperf-self-contained">This report keeps its styles in '
        "<code>assets/</code> beside it: uploaded alone it renders unstyled. For a CI "
        "artefact use <code>--self-contained-html</code> (one file, plots included), or "
        "upload the directory with <code>assets/</code>.</p>"
    )


def _value(value: Any) -> str:
    """A host/settings value as text: lists of records become ``a; b``, dicts ``k=v``."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(_value(v) for v in value)
    return "-" if value is None or value == "" else str(value)


def host_rows(host: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The host record as (key, value) rows: scalars first, then GPUs and checks, one each;
    no rows for empty values."""
    host = {k: v for k, v in host.items() if v not in (None, "", [], {})}
    rows = [(k, _value(v)) for k, v in host.items() if not isinstance(v, (list, dict))]
    for key, value in host.items():
        if key == "gpus" and isinstance(value, list):
            for i, gpu in enumerate(value):
                rows.append((f"gpu {i}", _value(gpu)))
        elif key == "requirements" and isinstance(value, list):
            for req in value:
                if isinstance(req, Mapping):
                    verdict = "ok" if req.get("ok") else f"FAILED: {_value(req.get('found'))}"
                    rows.append((f"check {req.get('name')}", verdict))
        elif isinstance(value, (list, dict)):
            rows.append((key, _value(value)))
    return rows


def summary_html(
    records: Sequence[Mapping[str, Any]],
    host: Mapping[str, Any],
    run_dir: str,
    settings: Mapping[str, Any] | None = None,
    self_contained: bool = True,
) -> str:
    """The 'MLPerf results' section: run settings, every item, the host (and, for a report
    with an ``assets/`` directory, how to make a CI artefact)."""
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[r["verdict"]["outcome"]] = outcomes.get(r["verdict"]["outcome"], 0) + 1
    counts = ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items())
    nodes = node_columns(records)
    rows = "".join(_summary_row(r, nodes) for r in records)
    columns = ("node", *SUMMARY_COLUMNS) if any(nodes) else SUMMARY_COLUMNS
    run = [("results directory", run_dir)]
    if records:
        run += [("backend", records[-1]["backend"]), ("system", records[-1]["system"])]
    for key, value in (settings or {}).items():
        if key == "tolerance_pct":
            run.append(("baseline tolerance", f"{value:g} %"))
        elif key != "baseline_run_id":
            run.append((key.replace("_", " "), _value(value)))
    if settings and settings.get("baseline_run_id"):
        run.append(("baseline run", str(settings["baseline_run_id"])))
    settings_rows = "".join(f"<tr>{_cells(row)}</tr>" for row in run)
    host_table = "".join(f"<tr>{_cells(row)}</tr>" for row in host_rows(host))
    return (
        f'{_STYLE}<div id="mlperf-report"><h2>MLPerf results</h2>'
        f"<p>{len(records)} items: {html.escape(counts)}</p>{self_contained_note(self_contained)}"
        f'<h3>Run settings</h3><table class="mlperf" id="mlperf-settings">{settings_rows}</table>'
        f'<h3>Items</h3><table class="mlperf" id="mlperf-summary">'
        f"<tr>{_cells(columns, 'th')}</tr>{rows}</table>"
        f"{_repeats_html(records)}{_ab_html(records)}"
        f'<h3>Host</h3><table class="mlperf" id="mlperf-host">{host_table}</table></div>'
    )


def _repeats_html(records: Sequence[Mapping[str, Any]]) -> str:
    """``--mlperf-repeat``: each repeated item's runs, median, min, max and spread."""
    rows = []
    for r in records:
        rep = r.get("repeat")
        if not rep or rep.get("min") is None:
            continue
        scale, unit = display_unit(rep.get("unit"))
        rows.append(
            (
                f"{r['benchmark']} {r['scenario']} {r['mode']}",
                str(rep["count"]),
                f"{rep['median'] / scale:.3f} {unit}",
                f"{rep['min'] / scale:.3f}",
                f"{rep['max'] / scale:.3f}",
                f"{rep['spread_pct']:.1f} %",
                f"run {rep['judged_run']}",
            )
        )
    if not rows:
        return ""
    head = ("item", "runs", "median", "min", "max", "spread", "judged")
    body = "".join(f"<tr>{_cells(row)}</tr>" for row in rows)
    return (
        f'<h3>Repeats</h3><table class="mlperf" id="mlperf-repeats">'
        f"<tr>{_cells(head, 'th')}</tr>{body}</table>"
    )


#: identity facts the A/B table leaves out (long, and in results.json)
_AB_HIDDEN = ("image_digests", "harness_build_dir")


def _ab_identity(side: Mapping[str, Any]) -> str:
    """`` (image repo:a, image_id sha256:0123456789ab, ...)``: what the side ran, from its
    backend's ``ab_identity()`` (nothing when the record has none)."""
    facts = [
        f"{k} {str(v)[:19] if k == 'image_id' else v}"
        for k, v in (side.get("identity") or {}).items()
        if v not in (None, "", []) and k not in _AB_HIDDEN
    ]
    return f" ({', '.join(facts)})" if facts else ""


def _ab_differs(ab: Mapping[str, Any]) -> str:
    """The fingerprint fields the two sides differ in, under the reason."""
    differs = ab.get("differs") or []
    if not differs:
        return ""
    return "<br>sides differ in " + html.escape("; ".join(differs))


def _ab_html(records: Sequence[Mapping[str, Any]]) -> str:
    """``--mlperf-ab``: per item each side's runs in order, the ratio, its interval, status."""
    rows = []
    for r in records:
        ab = r.get("ab")
        if not ab:
            continue
        scale, shown_unit = display_unit(ab.get("unit"))

        def runs(side: str, ab: Mapping[str, Any] = ab, scale: float = scale) -> str:
            return ", ".join(
                "-" if run["value"] is None else f"{run['value'] / scale:.3f}"
                for run in ab[side]["runs"]
            )

        ratio = ab.get("ratio")
        css = {"passed": "mlperf-pass", "regressed": "mlperf-fail"}.get(ab["status"], "mlperf-skip")
        cells = (
            f"{r['benchmark']} {r['scenario']} {r['mode']}",
            f"{ab['compared']} ({shown_unit})",
            f"{ab['baseline']['describe']}{_ab_identity(ab['baseline'])}: {runs('baseline')}",
            f"{ab['candidate']['describe']}{_ab_identity(ab['candidate'])}: {runs('candidate')}",
            ab["order"],
            "-" if ratio is None else f"{ratio:.3f}",
            "-" if ratio is None else f"{ab['ci_low']:.3f}-{ab['ci_high']:.3f}",
            f"{ab['tolerance_pct']:g} %",
        )
        rows.append(
            f'<tr>{_cells(cells)}<td class="{css}">{html.escape(ab["status"])}</td>'
            f"<td>{html.escape(ab['reason'])}{_ab_differs(ab)}</td></tr>"
        )
    if not rows:
        return ""
    head = (
        "item",
        "compared",
        "baseline (A) runs",
        "candidate (B) runs",
        "order",
        "ratio B/A",
        "CI",
        "tolerance",
        "status",
        "reason",
    )
    return (
        f'<h3>A/B</h3><table class="mlperf" id="mlperf-ab">'
        f"<tr>{_cells(head, 'th')}</tr>{''.join(rows)}</table>"
    )


def plots_html(record: Mapping[str, Any]) -> str:
    """The item's latency plots as embedded images (nothing when matplotlib is missing)."""
    try:
        plots = item_plots(record)
    except ImportError as exc:
        return f"<p>plots unavailable: {html.escape(str(exc))}</p>"
    images = "".join(
        f'<img class="mlperf-plot mlperf-plot-{kind}" alt="{kind} plot" src="{uri}">'
        for kind, uri in plots
    )
    return f'<div class="mlperf-plots">{images}</div>' if images else ""


def item_html(record: Mapping[str, Any], report_dir: Path | None) -> str:
    """Per-item block: checks, key LoadGen figures, INVALID reasons, links to the logs."""
    metric = record["metric"]
    checks = "".join(
        "<tr>"
        + _cells((c["name"], c["value"], c["bound"]))
        + f'<td class="{"mlperf-skip" if c.get("skipped") else "mlperf-pass" if c["passed"] else "mlperf-fail"}">'
        + check_word(c)
        + f"</td><td>{html.escape(c.get('detail', ''))}</td></tr>"
        for c in record["verdict"]["checks"]
    )
    accuracy = record.get("accuracy")
    accuracy_html = ""
    if accuracy:
        rows = "".join(f"<tr>{_cells(row)}</tr>" for row in accuracy_rows(accuracy))
        source = ", ".join(
            f"{key.replace('_', ' ')}: {accuracy[key]}"
            for key in ("precision", "reference_source", "dataset")
            if accuracy.get(key)
        )
        accuracy_html = (
            f'<table class="mlperf mlperf-accuracy"><tr>{_cells(ACCURACY_COLUMNS, "th")}</tr>'
            f"{rows}</table><p>{html.escape(source)}</p>"
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
    trace = log_dir / TRACE
    extra = [TRACE] if trace.is_file() and trace.stat().st_size > 0 else []
    for name in record["files"] + extra + ["result.json"]:
        target = (item_dir if name == "result.json" else log_dir) / name
        href = os.path.relpath(target, report_dir) if report_dir else target.as_uri()
        links.append(f'<a href="{html.escape(href)}">{html.escape(name)}</a>')
    return (
        f'{_STYLE}<div class="mlperf-item"><table class="mlperf mlperf-checks">'
        f"<tr>{_cells(CHECK_COLUMNS, 'th')}</tr>{checks}</table>"
        + (f"<p>INVALID because:</p><ul>{reasons}</ul>" if reasons else "")
        + accuracy_html
        + f'<table class="mlperf mlperf-metrics">{figure_rows}</table>'
        + plots_html(record)
        + f"<p>Logs: {' · '.join(links)}</p>"
        + _compliance_html(record, report_dir)
        + _provenance_html(record)
        + "</div>"
    )


def _compliance_html(record: Mapping[str, Any], report_dir: Path | None) -> str:
    """A compliance item's three runs (linked, reused or not) and its comparison figures."""
    comp = record.get("compliance")
    if not comp:
        return ""
    runs = comp.get("runs") or {}
    rows = []
    for name in ("performance", "accuracy", "audit"):
        path = runs.get(f"{name}_dir")
        if not path:
            continue
        href = os.path.relpath(path, report_dir) if report_dir else Path(path).as_uri()
        rows.append(
            f"<tr><td>{name}</td><td>{html.escape(runs.get(name, ''))}</td>"
            f'<td><a href="{html.escape(href)}">{html.escape(path)}</a></td></tr>'
        )
    acc = comp.get("accuracy") or {}
    part3 = comp.get("part3")
    summary = (
        f"{comp.get('test')}: {acc.get('matched', 0)} of {acc.get('sampled', 0)} sampled "
        f"responses equal the accuracy run's"
        + (
            f"; part III {part3.get('metric')} {part3.get('compliance'):.4f} vs "
            f"{part3.get('baseline'):.4f}"
            if isinstance(part3, dict)
            else f"; part III: {part3}"
            if part3
            else ""
        )
        + f"; {'passed' if comp.get('passed') else 'failed'}"
    )
    return (
        f'<p class="mlperf-compliance">{html.escape(summary)}</p>'
        f'<table class="mlperf mlperf-compliance-runs">{"".join(rows)}</table>'
    )


def _provenance_html(record: Mapping[str, Any]) -> str:
    """``fresh`` or ``reused`` (and from where), with the provenance id."""
    prov = record.get("provenance")
    if not prov:
        return ""
    source = f" from {html.escape(prov['reused_from'])}" if prov.get("reused_from") else ""
    return (
        f'<p class="mlperf-provenance">Result: <b>{html.escape(prov["status"])}</b>{source}; '
        f"provenance {html.escape(prov['id'][:16])}</p>"
    )


def fleet_html(fleet: Mapping[str, Any]) -> str:
    """The 'MLPerf fleet' section: per item each node's metric, the median, the deviation,
    outliers in red, a metric-by-node plot; then the host facts that differ."""
    from pytest_mlperf.report.plots import fleet_plot

    head = ("item", "node", "metric", "median", "deviation", "bound", "fleet")
    blocks = []
    for item in fleet.get("items", []):
        rows = []
        unit = item.get("unit")
        for n in item.get("nodes", []):
            verdict = "OUTLIER" if n.get("outlier") else (n.get("reason") or "ok")
            cls = "mlperf-fail" if n.get("outlier") else "mlperf-pass"
            cells = [
                item["item"],
                n["node"],
                format_metric(n.get("value"), unit),
                format_metric(item.get("median"), unit),
                "-" if n.get("deviation_pct") is None else f"{n['deviation_pct']:+.1f} %",
                "-" if item.get("bound_pct") is None else f"±{item['bound_pct']:.1f} %",
            ]
            rows.append(f"<tr>{_cells(cells)}<td class={cls}>{html.escape(str(verdict))}</td></tr>")
        try:
            uri = fleet_plot(item)
        except ImportError:
            uri = None
        image = (
            f'<img class="mlperf-plot mlperf-plot-fleet" alt="metric by node" src="{uri}">'
            if uri
            else ""
        )
        note = f"<p>{html.escape(item['note'])}</p>" if item.get("note") else ""
        blocks.append(
            f'<table class="mlperf mlperf-fleet"><tr>{_cells(head, "th")}</tr>'
            f"{''.join(rows)}</table>{note}{image}"
        )
    outliers = "".join(
        f"<li class=mlperf-fail>{html.escape(o['reason'])}</li>" for o in fleet.get("outliers", [])
    )
    diffs = "".join(
        f"<tr>{_cells([d['fact'], ', '.join(f'{k}={v!r}' for k, v in d['values'].items())])}</tr>"
        for d in fleet.get("host_differences", [])
    )
    nodes = ", ".join(map(str, fleet.get("nodes", [])))
    return (
        f'{_STYLE}<div id="mlperf-fleet"><h2>MLPerf fleet</h2>'
        f"<p>{len(fleet.get('nodes', []))} nodes: {html.escape(nodes)}; outlier: off the median "
        f"by more than max({fleet.get('k', 3):g} × MAD, {fleet.get('tolerance_pct', 5):g} %)</p>"
        f"{''.join(blocks)}"
        f"{f'<ul>{outliers}</ul>' if outliers else ''}"
        f'<h3>Host facts that differ</h3><table class="mlperf" id="mlperf-fleet-hosts">'
        f"{diffs or '<tr><td>none</td></tr>'}</table></div>"
    )
