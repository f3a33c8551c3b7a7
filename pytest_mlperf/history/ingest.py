"""Result records as history records: a finished session's, or an old ``results.json``'s."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_mlperf import jsonstrict
from pytest_mlperf.checks import Outcome
from pytest_mlperf.history.fingerprint import fingerprint, fingerprint_id
from pytest_mlperf.history.store import HistoryError, HistoryRecord, HistorySession, HistoryStore

#: the Server figure judged when the target QPS was pinned (the metric is its echo)
SERVER_LATENCY_KEY = "result_99.00_percentile_latency_ns"
#: outcomes of a session that make it not good
BAD_OUTCOMES = (Outcome.FAILED, Outcome.ERROR, Outcome.INTERRUPTED)
#: outcomes of a record that ran to a value the gate can use
USABLE_OUTCOMES = (Outcome.PASSED, Outcome.SKIPPED)


def item_key(record: Mapping[str, Any]) -> str:
    """``benchmark/scenario/mode``."""
    return f"{record['benchmark']}/{record['scenario']}/{record['mode']}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def judged_figure(
    record: Mapping[str, Any],
) -> tuple[float | None, str | None, str | None, bool, tuple[float, ...]]:
    """(value, unit, what, higher is better, repeat values) the gate judges for ``record``.

    The metric (the median of repeats); a Server run at a pinned target QPS is judged on
    its p99 latency instead.
    """
    metric = record.get("metric") or {}
    repeat = record.get("repeat") or {}
    found = repeat.get("runs")
    runs: list[Any] = found if isinstance(found, list) else []
    settings = record.get("settings") or {}
    if record.get("scenario") == "Server" and record.get("targets_source"):
        key = SERVER_LATENCY_KEY
        samples = tuple(
            v for v in (_number(r.get("p99_latency_ns")) for r in runs if isinstance(r, dict)) if v
        )
        value = (
            statistics.median(samples)
            if len(samples) > 1
            else _number((record.get("loadgen") or {}).get(key))
        )
        return value, "ns", f"{key} at target_qps {settings.get('target_qps')}", False, samples
    samples = tuple(
        v for v in (_number(r.get("value")) for r in runs if isinstance(r, dict)) if v is not None
    )
    value = _number(repeat.get("median")) if repeat.get("median") is not None else None
    if value is None:
        value = _number(metric.get("value"))
    unit = metric.get("unit")
    return value, unit, metric.get("name"), unit == "samples/s", samples


def session_is_good(records: Sequence[Mapping[str, Any]], interrupted: bool) -> bool:
    """No item failed, errored or was interrupted, and the session was not interrupted."""
    return not interrupted and not any(
        (r.get("verdict") or {}).get("outcome") in BAD_OUTCOMES for r in records
    )


def record_fingerprint(record: Mapping[str, Any], host: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint the gate used for the record (kept in its ``baseline``), else computed."""
    judged = ((record.get("baseline") or {}).get("history") or {}).get("fingerprint")
    return dict(judged) if isinstance(judged, dict) else fingerprint(record, host)


def history_records(
    records: Sequence[Mapping[str, Any]],
    host: Mapping[str, Any],
    *,
    run_id: str,
    ref: str,
    commit: str | None,
    good_session: bool,
    recorded_at: str,
) -> list[HistoryRecord]:
    """The session's result records as history records (good: usable for judging)."""
    out = []
    for record in records:
        if not isinstance(record, Mapping) or "benchmark" not in record:
            continue
        value, unit, compared, higher, samples = judged_figure(record)
        outcome = str((record.get("verdict") or {}).get("outcome") or "unknown")
        fp = record_fingerprint(record, host)
        good = (
            good_session
            and record.get("mode") == "performance"
            and value is not None
            and value > 0
            and outcome in USABLE_OUTCOMES
            and record.get("result_validity") is not None
            and not record.get("ab")  # --mlperf-ab: two variants compared, not the stack's
        )
        out.append(
            HistoryRecord(
                run_id=run_id,
                item_key=item_key(record),
                ref=ref,
                fingerprint_id=fingerprint_id(fp),
                fingerprint=fp,
                value=value,
                unit=unit,
                compared=compared,
                higher_is_better=higher,
                good=good,
                outcome=outcome,
                validity=record.get("result_validity"),
                recorded_at=recorded_at,
                commit=commit,
                samples=samples,
                record=dict(record),
            )
        )
    return out


def now() -> str:
    """The current time, ISO 8601 UTC to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def add_session(
    store: HistoryStore,
    records: Sequence[Mapping[str, Any]],
    host: Mapping[str, Any],
    *,
    run_id: str,
    ref: str,
    commit: str | None,
    started: str | None,
    interrupted: bool,
    backend: str | None,
    system: str | None,
    plugin_version: str | None,
    source: str,
    finished: str | None = None,
) -> tuple[int, bool]:
    """Add one session; (records added, whether it was good)."""
    good = session_is_good(records, interrupted)
    stamp = finished or now()
    session = HistorySession(
        run_id=run_id,
        ref=ref,
        good=good,
        interrupted=interrupted,
        source=source,
        added_at=now(),
        commit=commit,
        started=started,
        finished=finished,
        backend=backend,
        system=system,
        plugin_version=plugin_version,
    )
    rows = history_records(
        records,
        host,
        run_id=run_id,
        ref=ref,
        commit=commit,
        good_session=good,
        recorded_at=stamp,
    )
    return store.add_session(session, rows), good


def import_results(
    store: HistoryStore, path: Path, ref: str, commit: str | None = None
) -> tuple[str, int, bool]:
    """Import one ``results.json`` (a run's, or a saved baseline): (run id, records added,
    good). An unfinished run (no ``finished``) counts as interrupted."""
    try:
        data = jsonstrict.load_file(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise HistoryError(f"cannot import {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise HistoryError(f"cannot import {path}: not a pytest-mlperf results.json (no items)")
    run_id = str(data.get("run_id") or path.parent.name)
    items = [i for i in data["items"] if isinstance(i, dict)]
    host = data.get("host")
    added, good = add_session(
        store,
        items,
        host if isinstance(host, dict) else {},
        run_id=run_id,
        ref=ref,
        commit=commit,
        started=data.get("started"),
        finished=data.get("finished"),
        interrupted=not data.get("finished"),
        backend=data.get("backend"),
        system=data.get("system"),
        plugin_version=data.get("plugin_version"),
        source=str(path),
    )
    return run_id, added, good


def save_session(
    location: str,
    records: Sequence[Mapping[str, Any]],
    host: Mapping[str, Any],
    **session: Any,
) -> str:
    """Open the store at ``location``, add the session (see :func:`add_session`) and close
    it; the line the terminal shows. Raises :class:`HistoryError` naming the store."""
    from pytest_mlperf.history.store import open_store

    with open_store(location) as store:
        added, good = add_session(store, records, host, **session)
    if not added:
        return f"history: {location}: run {session['run_id']} is already there (nothing added)"
    kind = (
        "good (judged against from now on)"
        if good
        else "not good: a failure or an interruption (kept, never judged against)"
    )
    return f"history: {added} record(s) added to {location} under ref {session['ref']}; {kind}"
