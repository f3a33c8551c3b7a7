"""Latency plots for the HTML report, rendered with matplotlib's Agg canvas to PNG data URIs.

- percentiles: LoadGen's logged latency figures (min, p50 … p99.9, max) of one item, with
  the threshold or the Server latency bound drawn in;
- over time: every sample's latency against its issue time, read from LoadGen's trace
  (``mlperf_log_trace.json``, written when tracing is on — the reference backend turns
  it on for Server runs).

No pyplot (no global state, no display); no network: the images are embedded.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_mlperf.display import display_unit, ns_to_ms

TRACE = "mlperf_log_trace.json"
#: Traces larger than this are not read for a plot (a 600 s Server run writes about 60 MB).
MAX_TRACE_BYTES = 512 * 1024 * 1024
#: At most this many points in the over-time scatter (evenly thinned beyond it).
MAX_POINTS = 20_000

#: (label, LoadGen key) in percentile order.
PERCENTILES = (
    ("min", "result_min_latency_ns"),
    ("p50", "result_50.00_percentile_latency_ns"),
    ("p90", "result_90.00_percentile_latency_ns"),
    ("p95", "result_95.00_percentile_latency_ns"),
    ("p97", "result_97.00_percentile_latency_ns"),
    ("p99", "result_99.00_percentile_latency_ns"),
    ("p99.9", "result_99.90_percentile_latency_ns"),
    ("max", "result_max_latency_ns"),
)
#: A sample's begin event: ``ts`` is its scheduled time (µs since the trace started),
#: ``complete_ns`` its latency (completion - scheduled time), which is what LoadGen reports.
_SAMPLE = re.compile(r'"ph":"b".*?"ts":([0-9.]+).*?"complete_ns":(\d+)')


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure() -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.0), dpi=80)
    return fig, fig.add_subplot(1, 1, 1)


def percentile_points(
    loadgen: Mapping[str, Any], per_query: bool = False
) -> list[tuple[str, float]]:
    """(label, milliseconds) for every latency figure LoadGen logged."""
    points = []
    for label, key in PERCENTILES:
        if per_query:
            key = key.replace("_latency_ns", "_per_query_latency_ns")
        value = loadgen.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            points.append((label, ns_to_ms(float(value))))
    return points


def latency_bound_ms(record: Mapping[str, Any]) -> tuple[str, float] | None:
    """The line to draw: the latency threshold, or LoadGen's Server latency bound."""
    threshold = record.get("threshold") or ""
    match = re.match(r"<= ([0-9.e+]+) ms", threshold)
    if match:
        return "threshold", float(match.group(1))
    target = record.get("loadgen", {}).get("effective_target_latency_ns")
    if record.get("scenario") == "Server" and isinstance(target, (int, float)) and target > 0:
        return "latency bound", ns_to_ms(float(target))
    return None


def _draw_bound(ax: Any, bound: tuple[str, float] | None, top: float) -> None:
    """The bound as a dashed line, or as a note when it is far above the data."""
    if bound is None:
        return
    label = f"{bound[0]} {bound[1]:g} ms"
    if bound[1] <= 1.5 * top:
        ax.axhline(bound[1], color="#b00", linestyle="--", label=label)
    else:
        ax.plot([], [], color="#b00", linestyle="--", label=f"{label} (above the plot)")


def percentile_plot(record: Mapping[str, Any]) -> str | None:
    """The latency percentiles of one item as a PNG data URI; None when none were logged."""
    loadgen = record.get("loadgen") or {}
    points = percentile_points(loadgen)
    if len(points) < 2:
        return None
    fig, ax = _figure()
    labels = [label for label, _ in points]
    ax.plot(labels, [ms for _, ms in points], marker="o", label="per sample")
    per_query = percentile_points(loadgen, per_query=True)
    if len(per_query) >= 2:
        ax.plot(
            [lb for lb, _ in per_query], [ms for _, ms in per_query], marker="s", label="per query"
        )
    top = max(ms for _, ms in [*points, *per_query])
    _draw_bound(ax, latency_bound_ms(record), top)
    scenario = record.get("scenario", "")
    title = f"{record.get('benchmark', '')} {scenario}: latency percentiles"
    if scenario == "Offline":
        title += " (time to each sample's completion)"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def read_trace(path: Path) -> tuple[list[float], list[float]]:
    """(scheduled time in s, latency in ms) of every sample in a LoadGen trace; empty if none."""
    times: list[float] = []
    latencies: list[float] = []
    try:
        if path.stat().st_size > MAX_TRACE_BYTES:
            return times, latencies
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"Sample"' not in line:
                    continue
                match = _SAMPLE.search(line)
                if match:
                    times.append(float(match.group(1)) / 1e6)  # the trace's "ts" is in µs
                    latencies.append(ns_to_ms(int(match.group(2))))
    except OSError:
        return [], []
    return times, latencies


def over_time_plot(record: Mapping[str, Any], trace: Path) -> str | None:
    """Every sample's latency over the run (from the trace) as a PNG data URI, or None."""
    times, latencies = read_trace(trace)
    if len(times) < 2 or max(times) <= 0:
        return None
    step = max(1, len(times) // MAX_POINTS)
    fig, ax = _figure()
    ax.scatter(times[::step], latencies[::step], s=4, alpha=0.5, linewidths=0)
    bound = latency_bound_ms(record)
    if bound is not None:
        _draw_bound(ax, bound, max(latencies))
        ax.legend(fontsize=8)
    thinned = f", every {step}th of {len(times)}" if step > 1 else f", {len(times)} samples"
    ax.set_title(
        f"{record.get('benchmark', '')} {record.get('scenario', '')}: latency over time{thinned}",
        fontsize=10,
    )
    ax.set_xlabel("scheduled time since the run started (s)")
    ax.set_ylabel("latency (ms)")
    ax.grid(True, alpha=0.3)
    return _png(fig)


def item_plots(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, data URI) of every plot an item has: ``percentiles``, ``over-time``.

    A performance item with logged latencies gets the percentile plot; one whose log
    directory holds a LoadGen trace with samples also gets the over-time plot.
    """
    if record.get("mode") != "performance":
        return []
    plots = []
    percentile = percentile_plot(record)
    if percentile:
        plots.append(("percentiles", percentile))
    log_dir = record.get("log_dir")
    trace = Path(log_dir) / TRACE if log_dir else None
    if trace is not None and trace.is_file() and trace.stat().st_size > 0:
        over_time = over_time_plot(record, trace)
        if over_time:
            plots.append(("over-time", over_time))
    return plots


def fleet_plot(item: Mapping[str, Any]) -> str | None:
    """One fleet item's metric by node (bars), the median and the outlier band; outliers red.

    ``item`` is an entry of ``fleet_view(...)["items"]``; None when no node has a metric.
    """
    nodes = [n for n in item.get("nodes", []) if n.get("value") is not None]
    if not nodes or item.get("median") is None:
        return None
    scale, unit = display_unit(item.get("unit"))
    fig, ax = _figure()
    labels = [str(n["node"]) for n in nodes]
    values = [float(n["value"]) / scale for n in nodes]
    colors = ["#c0392b" if n.get("outlier") else "#2e86c1" for n in nodes]
    ax.bar(labels, values, color=colors)
    median = float(item["median"]) / scale
    ax.axhline(median, color="#333", linewidth=1, label="fleet median")
    bound = item.get("bound_pct")
    if bound is not None:
        lo, hi = median * (1 - bound / 100), median * (1 + bound / 100)
        ax.axhspan(max(lo, 0.0), hi, color="#999", alpha=0.15, label=f"±{bound:.1f} %")
    ax.set_title(f"{item.get('item', '')}: {item.get('metric') or 'metric'} by node", fontsize=10)
    ax.set_xlabel("node")
    ax.set_ylabel(unit)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
