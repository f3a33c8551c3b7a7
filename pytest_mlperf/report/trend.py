"""The trend page: per item, its metric over the history as an inline SVG — the values, the
noise band (mean ± 2 sigma of each segment between change points), the gate's decision on
each point and the change points (:mod:`pytest_mlperf.history.changepoints`). Pure: plain
data in (:class:`TrendSeries`), HTML out; no scripts, nothing loaded from the network.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_mlperf.display import display_unit
from pytest_mlperf.history.changepoints import Segment, change_points, segments

#: the gate's decisions, and the colour each point gets
DECISION_COLOURS = {
    "regressed": "#c00000",
    "improved": "#008000",
    "inconclusive": "#d08000",
    "unchanged": "#3060c0",
    "skipped": "#909090",
}
_NO_DECISION = "#3060c0"
WIDTH, HEIGHT = 760, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 16, 14, 40
_STYLE = (
    "<style>.mlperf-trend-item{margin:10px 0 18px}.mlperf-trend-item h3{margin:4px 0}"
    "svg.mlperf-trend{background:#fff;border:1px solid #ccc}"
    ".mlperf-trend-band{fill:#9ab;fill-opacity:.25;stroke:none}"
    ".mlperf-trend-line{fill:none;stroke:#456;stroke-width:1.5}"
    ".mlperf-trend-change{stroke:#c00000;stroke-width:1.5;stroke-dasharray:5 4}"
    ".mlperf-trend-axis{stroke:#888;stroke-width:1}.mlperf-trend-label{font:11px sans-serif;fill:#333}"
    "table.mlperf-trend-table{border-collapse:collapse;margin:4px 0}"
    "table.mlperf-trend-table td,table.mlperf-trend-table th{border:1px solid #ccc;padding:2px 8px}</style>"
)


@dataclass(frozen=True)
class TrendPoint:
    """One record: when, its value, its run, the gate's decision on it (None: not judged),
    and whether it is good (judged against: from a session with no failure and no
    interruption)."""

    time: str
    value: float | None
    run_id: str
    decision: str | None = None
    good: bool = True


@dataclass(frozen=True)
class TrendSeries:
    """One item's points, oldest first (``item``: e.g. ``bert-99/Offline/performance``)."""

    item: str
    unit: str | None
    points: tuple[TrendPoint, ...]
    higher_is_better: bool = True
    #: what else the label should say (e.g. which fingerprint)
    note: str = ""


def analyse(series: TrendSeries) -> tuple[list[int], list[Segment]]:
    """Change points (indices into ``series.points``) and the segments of the valued points."""
    valued = [i for i, p in enumerate(series.points) if p.value is not None]
    values = [float(series.points[i].value or 0.0) for i in valued]
    starts = change_points(values)
    segs = segments(values, starts)
    return [valued[s] for s in starts], [
        Segment(valued[g.start], valued[g.stop - 1] + 1, g.mean, g.sigma) for g in segs
    ]


_INNER_W, _INNER_H = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM


@dataclass(frozen=True)
class _Frame:
    """The chart's geometry: ``n`` points across, values ``lo`` to ``hi`` up."""

    lo: float
    hi: float
    n: int

    def x(self, i: float) -> float:
        """The x of point ``i`` (fractions between points too); one point sits mid-chart."""
        step = _INNER_W / max(self.n - 1, 1)
        return _LEFT + (i * step if self.n > 1 else _INNER_W / 2)

    def y(self, v: float) -> float:
        """The y of value ``v`` (in the chart's unit)."""
        return _TOP + (self.hi - v) / (self.hi - self.lo) * _INNER_H


def _frame(values: Sequence[float], segs: Sequence[Segment], scale: float, n: int) -> _Frame:
    """The value range: every value and every band, padded 8 % each way."""
    bands = [(g.mean - 2 * g.sigma) / scale for g in segs] + [
        (g.mean + 2 * g.sigma) / scale for g in segs
    ]
    lo, hi = min([*values, *bands], default=0.0), max([*values, *bands], default=1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    return _Frame(lo - pad, hi + pad, n)


def _bands(f: _Frame, segs: Sequence[Segment], scale: float, unit: str) -> list[str]:
    """The noise band: mean ± 2 sigma per segment."""
    parts = []
    for g in segs:
        x0, x1 = f.x(max(g.start - 0.5, 0)), f.x(min(g.stop - 0.5, f.n - 1))
        top, bottom = f.y((g.mean + 2 * g.sigma) / scale), f.y((g.mean - 2 * g.sigma) / scale)
        parts.append(
            f'<rect class="mlperf-trend-band" x="{x0:.1f}" y="{top:.1f}" '
            f'width="{max(x1 - x0, 2):.1f}" height="{max(bottom - top, 1):.1f}">'
            f"<title>band: mean {g.mean / scale:.3f} ± 2 sigma ({2 * g.sigma / scale:.3f} "
            f"{html.escape(unit)})</title></rect>"
        )
    return parts


def _axes(f: _Frame, unit: str, pts: Sequence[TrendPoint]) -> list[str]:
    """Both axes, three value labels, the unit, and the first and last record's time."""
    parts = [
        f'<line class="mlperf-trend-axis" x1="{_LEFT}" y1="{_TOP + _INNER_H}" '
        f'x2="{WIDTH - _RIGHT}" y2="{_TOP + _INNER_H}"/>'
        f'<line class="mlperf-trend-axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" '
        f'y2="{_TOP + _INNER_H}"/>'
    ]
    for frac in (0.0, 0.5, 1.0):
        v = f.lo + (f.hi - f.lo) * frac
        parts.append(
            f'<text class="mlperf-trend-label" x="{_LEFT - 6}" y="{f.y(v) + 4:.1f}" '
            f'text-anchor="end">{v:.4g}</text>'
        )
    parts.append(
        f'<text class="mlperf-trend-label" x="14" y="{_TOP + _INNER_H / 2:.1f}" '
        f'transform="rotate(-90 14 {_TOP + _INNER_H / 2:.1f})" text-anchor="middle">'
        f"{html.escape(unit)}</text>"
    )
    if pts:
        ends = ((0, "start"), (len(pts) - 1, "end")) if len(pts) > 1 else ((0, "middle"),)
        for i, anchor in ends:
            parts.append(
                f'<text class="mlperf-trend-label" x="{f.x(i):.1f}" y="{HEIGHT - 12}" '
                f'text-anchor="{anchor}">{html.escape(pts[i].time[:16])}</text>'
            )
    return parts


def _change_lines(
    f: _Frame,
    changes: Sequence[int],
    segs: Sequence[Segment],
    pts: Sequence[TrendPoint],
    scale: float,
) -> list[str]:
    """A dashed line before each change point; its title says the shift of the mean."""
    parts = []
    for c in changes:
        cx = f.x(c - 0.5)
        before = next((g for g in segs if g.stop == c), None)
        after = next((g for g in segs if g.start == c), None)
        shift = ""
        if before and after and before.mean:
            shift = f": mean {before.mean / scale:.4g} → {after.mean / scale:.4g} "
            shift += f"({(after.mean - before.mean) / before.mean * 100:+.1f} %)"
        parts.append(
            f'<line class="mlperf-trend-change" data-index="{c}" x1="{cx:.1f}" y1="{_TOP}" '
            f'x2="{cx:.1f}" y2="{_TOP + _INNER_H}"><title>change point before run '
            f"{html.escape(pts[c].run_id)}{html.escape(shift)}</title></line>"
        )
    return parts


def _circles(f: _Frame, pts: Sequence[TrendPoint], scale: float, unit: str) -> list[str]:
    """One circle per valued point, coloured by the gate's decision (hollow: not good)."""
    parts = []
    for i, p in enumerate(pts):
        if p.value is None:
            continue
        colour = DECISION_COLOURS.get(p.decision or "", _NO_DECISION)
        fill = colour if p.good else "#fff"
        decision = p.decision or "not judged"
        title = f"run {p.run_id}, {p.time}: {p.value / scale:.4g} {unit}, {decision}" + (
            "" if p.good else " (not good: never judged against)"
        )
        parts.append(
            f'<circle class="mlperf-trend-point" data-decision="{html.escape(decision)}" '
            f'data-run="{html.escape(p.run_id)}" cx="{f.x(i):.1f}" cy="{f.y(p.value / scale):.1f}" '
            f'r="{5 if p.decision == "regressed" else 4}" fill="{fill}" stroke="{colour}" '
            f'stroke-width="1.5"><title>{html.escape(title)}</title></circle>'
        )
    return parts


def series_svg(series: TrendSeries) -> str:
    """The item's chart: band, line, one circle per point (its ``<title>`` says the run,
    time, value and decision), a dashed red line before each change point."""
    scale, unit = display_unit(series.unit)
    pts = series.points
    changes, segs = analyse(series)
    values = [p.value / scale for p in pts if p.value is not None]
    f = _frame(values, segs, scale, len(pts))
    parts = [
        f'<svg class="mlperf-trend" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{html.escape(series.item)} over {len(pts)} records">',
        *_bands(f, segs, scale, unit),
        *_axes(f, unit, pts),
    ]
    line = " ".join(
        f"{f.x(i):.1f},{f.y(p.value / scale):.1f}" for i, p in enumerate(pts) if p.value is not None
    )
    if line:
        parts.append(f'<polyline class="mlperf-trend-line" points="{line}"/>')
    parts += _change_lines(f, changes, segs, pts, scale)
    parts += _circles(f, pts, scale, unit)
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    items = "".join(
        f'<span style="color:{c}">&#9679; {html.escape(d)}</span> '
        for d, c in DECISION_COLOURS.items()
    )
    return (
        f'<p class="mlperf-trend-legend">{items}<span>&#9675; not good (a failed or interrupted session, an A/B item): never judged against</span> · '
        '<span style="color:#c00000">- - change point</span> · shaded: noise band '
        "(mean ± 2 sigma between change points)</p>"
    )


def _summary(series: TrendSeries) -> str:
    scale, unit = display_unit(series.unit)
    changes, segs = analyse(series)
    decisions: dict[str, int] = {}
    for p in series.points:
        decisions[p.decision or "not judged"] = decisions.get(p.decision or "not judged", 0) + 1
    latest = next((p for p in reversed(series.points) if p.value is not None), None)
    rows = [
        ("records", str(len(series.points))),
        ("latest", "-" if latest is None else f"{(latest.value or 0) / scale:.4g} {unit}"),
        ("decisions", ", ".join(f"{n} {d}" for d, n in decisions.items())),
        (
            "change points",
            "; ".join(
                f"before run {series.points[c].run_id} ({series.points[c].time[:16]})"
                for c in changes
            )
            or "none",
        ),
    ]
    if segs:
        g = segs[-1]
        rows.append(
            (
                "current band",
                f"{g.mean / scale:.4g} ± {2 * g.sigma / scale:.3g} {unit} "
                f"({g.stop - g.start} records)",
            )
        )
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="mlperf-trend-table">{body}</table>'


def trend_html(series: Sequence[TrendSeries]) -> str:
    """The 'MLPerf trend' section (for the HTML report and the history page)."""
    blocks = []
    for s in series:
        note = f" ({html.escape(s.note)})" if s.note else ""
        better = "higher is better" if s.higher_is_better else "lower is better"
        blocks.append(
            f'<div class="mlperf-trend-item" data-item="{html.escape(s.item)}">'
            f"<h3>{html.escape(s.item)}{note}</h3><p>{better}</p>"
            f"{series_svg(s)}{_summary(s)}</div>"
        )
    empty = "" if blocks else "<p>no records in the history yet</p>"
    return (
        f'{_STYLE}<div id="mlperf-trend"><h2>MLPerf trend</h2>{_legend()}'
        f"{''.join(blocks)}{empty}</div>"
    )


def trend_page(series: Sequence[TrendSeries], title: str) -> str:
    """A whole HTML document: ``pytest-mlperf history --html OUT``."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>{trend_html(series)}</body></html>\n"
    )
