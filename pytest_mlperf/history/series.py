"""The history store's records as trend series (one per item and fingerprint): the data of
the trend page (:mod:`pytest_mlperf.report.trend`). No pytest here."""

from __future__ import annotations

import html
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_mlperf.history.ingest import item_key
from pytest_mlperf.history.store import HistoryError, HistoryRecord, open_store
from pytest_mlperf.report.trend import TrendPoint, TrendSeries, trend_html, trend_page


def decision_of(record: HistoryRecord) -> str | None:
    """The gate's decision on a record: its baseline/history comparison's status (regressed,
    improved, unchanged, inconclusive, skipped); None when it was not judged."""
    compared = record.record.get("baseline") if record.record else None
    status = compared.get("status") if isinstance(compared, dict) else None
    return str(status) if status else None


def trend_series(
    records: Sequence[HistoryRecord],
    items: Collection[str] | None = None,
    ref: str | None = None,
) -> list[TrendSeries]:
    """Group ``records`` by item and fingerprint (records of different fingerprints are not
    comparable: each gets its own series), oldest first; ``items``/``ref`` filter."""
    groups: dict[tuple[str, str], list[HistoryRecord]] = {}
    for r in records:
        if (items is not None and r.item_key not in items) or (ref is not None and r.ref != ref):
            continue
        groups.setdefault((r.item_key, r.fingerprint_id), []).append(r)
    per_item: dict[str, int] = {}
    for item, _ in groups:
        per_item[item] = per_item.get(item, 0) + 1
    out = []
    for (item, fingerprint), group in sorted(groups.items()):
        group.sort(key=lambda r: (r.recorded_at, r.id or 0))
        refs = sorted({r.ref for r in group})
        note = f"ref {', '.join(refs)}"
        if per_item[item] > 1:
            note += f", fingerprint {fingerprint[:12]}"
        out.append(
            TrendSeries(
                item=item,
                unit=group[-1].unit,
                higher_is_better=group[-1].higher_is_better,
                note=note,
                points=tuple(
                    TrendPoint(r.recorded_at, r.value, r.run_id, decision_of(r), r.good)
                    for r in group
                ),
            )
        )
    return out


def load_trend(
    location: str | Path, items: Collection[str] | None = None, ref: str | None = None
) -> list[TrendSeries]:
    """The trend series of the store at ``location`` (it must exist)."""
    with open_store(location, create=False) as store:
        return trend_series(store.all_records(), items, ref)


def report_section(location: str, records: Sequence[Mapping[str, Any]]) -> str:
    """The HTML report's trend section: this session's performance items over the store's
    history (a store that cannot be read says so in the section, never fails the report)."""
    keys = {item_key(r) for r in records if r.get("mode") == "performance"}
    if not keys:
        return ""
    try:
        series = load_trend(location, keys)
    except HistoryError as exc:
        return f'<div id="mlperf-trend"><h2>MLPerf trend</h2><p>{html.escape(str(exc))}</p></div>'
    return trend_html(series)


def write_page(location: str | Path, out: Path, ref: str | None = None) -> int:
    """``pytest-mlperf history --html OUT``: the trend page of every item; the series count."""
    series = load_trend(location, ref=ref)
    title = f"MLPerf trend: {location}" + (f" (ref {ref})" if ref else "")
    try:
        out.write_text(trend_page(series, title), encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot write the trend page {out}: {exc.strerror or exc}") from exc
    return len(series)
