"""Side by side: two runs' ``results.json``, item by item, without running anything.

Used by ``pytest-mlperf compare RUN_A RUN_B`` and ``pytest --mlperf-compare RUN_A RUN_B``.
Items are matched by benchmark, scenario and mode; B is compared with A under the same
like-for-like rule and tolerance as ``--mlperf-baseline``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_mlperf.baseline import IMPROVED, REGRESSED, compare_pair
from pytest_mlperf.display import display_unit, figure_text
from pytest_mlperf.history.results_file import ResultsFile, load_results
from pytest_mlperf.report.terminal import text_table

COLUMNS = (
    "benchmark",
    "scenario",
    "mode",
    "config_ver",
    "metric",
    "A",
    "B",
    "unit",
    "delta",
    "change",
)


def _shown(item: Mapping[str, Any] | None) -> tuple[str, str]:
    """(value, unit) with latencies in ms."""
    if item is None:
        return "-", ""
    value, unit = item["metric"]["value"], item["metric"]["unit"]
    if value is None:
        return "-", unit or ""
    return figure_text(value, unit), display_unit(unit)[1]


def _key(item: Mapping[str, Any]) -> tuple[str, str, str]:
    return (item["benchmark"], item["scenario"], item["mode"])


def compare_rows(a: ResultsFile, b: ResultsFile, tolerance_pct: float) -> list[list[str]]:
    """One row per item of either run, in A's order, then B's extra items."""
    keys = list(dict.fromkeys([*map(_key, a.items), *map(_key, b.items)]))
    rows = []
    for key in keys:
        item_a, item_b = a.find(*key), b.find(*key)
        value_a, unit_a = _shown(item_a)
        value_b, unit_b = _shown(item_b)
        either = item_b or item_a
        assert either is not None
        metric = either["metric"]["name"] or "-"
        config_ver = either["config_ver"]
        delta = "-"
        if item_a is None:
            change = "only in B"
        elif item_b is None:
            change = "only in A"
        elif item_b["mode"] != "performance":
            change = "accuracy item: not compared"
        else:
            comparison = compare_pair(item_b, item_a, tolerance_pct, str(a.path))
            if comparison.skipped:
                change = comparison.reason
            else:
                assert comparison.delta_pct is not None
                delta = f"{comparison.delta_pct:+.1f} %"
                change = {
                    REGRESSED: "worse",
                    IMPROVED: "better",
                }.get(comparison.status, f"same (within ±{tolerance_pct:g} %)")
        rows.append([*key, config_ver, metric, value_a, value_b, unit_b or unit_a, delta, change])
    return rows


def compare_text(path_a: Path, path_b: Path, tolerance_pct: float, option: str = "") -> list[str]:
    """The comparison as lines of text; raises ConfigError (naming ``option`` RUN_A or
    RUN_B and the value) for anything unreadable."""
    prefix = f"{option} " if option else ""
    a = load_results(path_a, f"{prefix}RUN_A")
    b = load_results(path_b, f"{prefix}RUN_B")
    lines = [f"A: {a.describe()}", f"B: {b.describe()}"]
    rows = compare_rows(a, b, tolerance_pct)
    if not rows:
        lines.append("no items in either run")
        return lines
    lines.extend(text_table(COLUMNS, rows))
    worse = sum(1 for r in rows if r[-1] == "worse")
    better = sum(1 for r in rows if r[-1] == "better")
    lines.append(
        f"{len(rows)} items: {worse} worse, {better} better beyond ±{tolerance_pct:g} % "
        "(throughput: higher is better; latency: lower is better)"
    )
    return lines
