"""A run's ``results.json`` as a one-file history: found, loaded and validated
(:class:`ResultsFile`), several sessions' pooled into one, a good session's saved.

``--mlperf-baseline FILE`` (one file, or several pooled) and the ``compare`` command read
runs here; :mod:`pytest_mlperf.baseline` compares them. Records are like-for-like (the
rule both pooling and comparing use) when they share benchmark, scenario and mode, and
``config_ver``, system, the shortened-run flag and the metric.

No pytest here.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_mlperf import jsonstrict
from pytest_mlperf.checks import Outcome
from pytest_mlperf.errors import ConfigError, DataError
from pytest_mlperf.pathcheck import checked_path
from pytest_mlperf.results.store import atomic_write_text

#: results.json versions this code can read.
READABLE_SCHEMA_VERSIONS = (1,)
#: LoadGen targets a baseline item ran with, rerun by ``--mlperf-baseline`` (like-for-like):
#: only Server's, which comparability needs (its metric echoes the target). Offline's
#: expected_qps and the streams' expected latency only size the run: pinned from a slower
#: baseline they make a faster machine run out of samples before the minimum duration
TARGET_KEYS = ("target_qps",)
#: the Server latency compared when both runs used the same target QPS
SERVER_LATENCY_KEY = "result_99.00_percentile_latency_ns"
#: What makes two records of the same item comparable, besides benchmark/scenario/mode.
LIKE_FOR_LIKE = ("config_ver", "system", "fast")


@dataclass(frozen=True)
class ResultsFile:
    """A loaded ``results.json`` (of a run, or a saved baseline)."""

    path: Path
    run_id: str
    system: str | None
    backend: str | None
    started: str | None
    finished: str | None
    fast: bool | None
    items: tuple[Mapping[str, Any], ...]
    #: the other runs pooled into ``items`` (``path (run id)``); empty for one run
    pooled: tuple[str, ...] = ()

    def describe(self) -> str:
        """``path (run <id>, system <s>, backend <b>)``, and the runs pooled with it."""
        parts = [f"run {self.run_id}"]
        if self.system:
            parts.append(f"system {self.system}")
        if self.backend:
            parts.append(f"backend {self.backend}")
        if self.fast:
            parts.append("fast")
        if self.pooled:
            parts.append(f"pooled with {len(self.pooled)} more: {', '.join(self.pooled)}")
        return f"{self.path} ({', '.join(parts)})"

    def find(self, benchmark: str, scenario: str, mode: str) -> Mapping[str, Any] | None:
        """The last record of that item (a run can hold an item twice)."""
        found = None
        for item in self.items:
            if (item["benchmark"], item["scenario"], item["mode"]) == (benchmark, scenario, mode):
                found = item
        return found


def find_results_file(path: Path, option: str) -> Path:
    """``path`` itself, ``path/results.json``, or the newest finished ``path/*/results.json``."""
    checked_path(path, option)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ConfigError(f"{option}: {str(path)!r} does not exist")
    direct = path / "results.json"
    if direct.is_file():
        return direct
    runs = sorted(path.glob("*/results.json"), key=lambda p: p.parent.name, reverse=True)
    for candidate in runs:
        try:
            finished = jsonstrict.load_file(candidate).get("finished")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            continue
        if finished:
            return candidate
    if runs:
        raise ConfigError(
            f"{option}: no finished run under {str(path)!r} (every */results.json there "
            "belongs to an interrupted or running session)"
        )
    raise ConfigError(
        f"{option}: {str(path)!r} holds no results.json (looked for results.json and "
        "*/results.json)"
    )


_TEXT_FIELDS = ("benchmark", "scenario", "mode", "config_ver", "system")


def _require(item: Any, index: int, source: Path) -> Mapping[str, Any]:
    """``item`` when it has the fields comparisons read, each of the type they expect."""
    where = f"{source}: items/{index}"
    if not isinstance(item, dict):
        raise DataError(f"{where} is not an object")
    for key in (*_TEXT_FIELDS, "metric"):
        if key not in item:
            raise DataError(f"{where} has no {key!r}")
    for key in _TEXT_FIELDS:
        if not isinstance(item[key], str):
            raise DataError(f"{where}/{key} is not a string: {_short(item[key])}")
    if "fast" in item and not isinstance(item["fast"], (bool, type(None))):
        raise DataError(f"{where}/fast is not true, false or null: {_short(item['fast'])}")
    metric = item["metric"]
    if not isinstance(metric, dict) or not {"name", "value", "unit"} <= set(metric):
        raise DataError(f"{where}/metric needs name, value and unit")
    for key in ("name", "unit"):
        if not isinstance(metric[key], (str, type(None))):
            raise DataError(f"{where}/metric/{key} is not a string: {_short(metric[key])}")
    value = metric["value"]
    if not _number_or_null(value):
        raise DataError(f"{where}/metric/value is not a number: {_short(value)}")
    verdict = item.get("verdict", {})
    if not isinstance(verdict, dict) or not isinstance(verdict.get("outcome", ""), str):
        raise DataError(f"{where}/verdict is not an object with a string outcome")
    for key in ("settings", "loadgen", "repeat"):
        if item.get(key) is not None and not isinstance(item[key], dict):
            raise DataError(f"{where}/{key} is not an object or null: {_short(item[key])}")
    repeat = item.get("repeat") or {}
    for key in ("median", "min", "max"):
        if not _number_or_null(repeat.get(key)):
            raise DataError(f"{where}/repeat/{key} is not a number: {_short(repeat[key])}")
    runs = repeat.get("runs")
    if runs is not None and (
        not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs)
    ):
        raise DataError(f"{where}/repeat/runs is not a list of objects: {_short(runs)}")
    return item


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_or_null(value: Any) -> bool:
    return value is None or _is_number(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_results(path: Path, option: str) -> ResultsFile:
    """Read a run's ``results.json`` (a file, a run directory or a results directory).

    Raises :class:`ConfigError` naming ``option`` and the problem.
    """
    source = find_results_file(path, option)
    try:
        data = jsonstrict.load_file(source)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{option}: cannot read {source}: {exc}") from exc
    except ValueError as exc:  # not JSON, non-finite numbers, deep nesting
        raise ConfigError(f"{option}: {source} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or "items" not in data or "schema_version" not in data:
        raise ConfigError(
            f"{option}: {source} is not a pytest-mlperf results.json (needs schema_version "
            "and items)"
        )
    version = data["schema_version"]
    if version not in READABLE_SCHEMA_VERSIONS:
        raise ConfigError(
            f"{option}: {source} has schema_version {version!r}; this pytest-mlperf reads "
            f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}"
        )
    if not isinstance(data["items"], list):
        raise ConfigError(f"{option}: {source}: items is not a list")
    try:
        items = tuple(_require(item, i, source) for i, item in enumerate(data["items"]))
    except DataError as exc:
        raise ConfigError(f"{option}: {exc}") from exc
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    fast = settings.get("fast") if isinstance(settings, dict) else None
    return ResultsFile(
        path=source,
        run_id=str(data.get("run_id") or source.parent.name),
        system=data.get("system"),
        backend=data.get("backend"),
        started=data.get("started"),
        finished=data.get("finished"),
        fast=fast if isinstance(fast, bool) else None,
        items=items,
    )


def mismatches(current: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    """Why ``current`` and ``base`` (records of one item) are not like-for-like."""
    found = []
    for key in LIKE_FOR_LIKE:
        if key in base and current.get(key) != base.get(key):
            found.append(f"{key} {current.get(key)} here, {base.get(key)} in the baseline")
    name, base_name = current["metric"]["name"], base["metric"]["name"]
    if name and base_name and name != base_name:
        found.append(f"metric {name} here, {base_name} in the baseline")
    return found


def same_server_target(current: Mapping[str, Any], base: Mapping[str, Any]) -> bool:
    """Both Server runs ran at the same target QPS (pinned): compare latency, not the echo."""
    if current.get("scenario") != "Server":
        return False
    a = (current.get("settings") or {}).get("target_qps")
    b = (base.get("settings") or {}).get("target_qps")
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b <= 0:
        return False
    return abs(a - b) <= 1e-6 * b


def value_range(values: Sequence[float]) -> dict[str, float | None]:
    """Median, min, max and relative spread (max - min) / median in percent of ``values``
    (all None when there are none); the ``repeat`` summary's figures."""
    if not values:
        return {"median": None, "min": None, "max": None, "spread_pct": None}
    median = statistics.median(values)
    spread = (max(values) - min(values)) / median * 100.0 if median else None
    return {
        "median": median,
        "min": min(values),
        "max": max(values),
        "spread_pct": None if spread is None else round(spread, 3),
    }


def _runs_of(record: Mapping[str, Any], run_id: str) -> list[dict[str, Any]]:
    """The record's LoadGen runs (its repeats, or the one run) as repeat ``runs`` entries."""
    runs = (record.get("repeat") or {}).get("runs")  # validated by load_results
    if runs:
        found = [dict(r) for r in runs]
    else:
        found = [
            {
                "log_dir": record.get("log_dir"),
                "value": record["metric"]["value"],
                "validity": record.get("result_validity"),
                "p99_latency_ns": (record.get("loadgen") or {}).get(SERVER_LATENCY_KEY),
            }
        ]
    for run in found:
        run["run_id"] = run_id
    return found


def _poolable(primary: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """``other`` measured what ``primary`` did: like-for-like, and Server at its target."""
    if mismatches(primary, other) or other["metric"]["value"] is None:
        return False
    if primary.get("scenario") == "Server" and (primary.get("settings") or {}).get("target_qps"):
        return same_server_target(primary, other)
    return True


def _pooled_record(
    primary: Mapping[str, Any], runs: list[dict[str, Any]], run_ids: list[str]
) -> dict[str, Any]:
    """``primary`` with a ``repeat`` summary over ``runs`` (the runs of every session)."""
    values = [float(r["value"]) for r in runs if _is_number(r.get("value"))]
    summary = dict(primary.get("repeat") or {})
    summary.update(
        count=len(runs),
        values=[r.get("value") for r in runs],
        **value_range(values),
        unit=primary["metric"]["unit"],
        runs=runs,
        sessions=run_ids,
    )
    return {**primary, "repeat": summary}


def pool_results(files: Sequence[ResultsFile]) -> ResultsFile:
    """One baseline from several runs of the same build (``files[0]`` first).

    Each item of the first run gets the LoadGen runs of the same item in the others pooled
    into its ``repeat`` (median, min, max over every session), so the baseline's noise holds
    the machine's drift *between* sessions, which the repeats of one session do not see.
    An item of another run is pooled only when it is like-for-like with the first run's
    (config_ver, system, fast, metric; Server at the same target QPS); the targets a
    baseline pins are the first run's.
    """
    if len(files) == 1:
        return files[0]
    first, others = files[0], files[1:]
    items = []
    for record in first.items:
        key = (record["benchmark"], record["scenario"], record["mode"])
        runs, run_ids = _runs_of(record, first.run_id), [first.run_id]
        for other in others:
            found = other.find(*key)
            if found is not None and _poolable(record, found):
                runs.extend(_runs_of(found, other.run_id))
                run_ids.append(other.run_id)
        items.append(_pooled_record(record, runs, run_ids) if len(run_ids) > 1 else record)
    return replace(
        first,
        items=tuple(items),
        pooled=tuple(f"{f.path} (run {f.run_id})" for f in others),
    )


def pinned_targets(baseline: ResultsFile, current: Mapping[str, Any]) -> dict[str, float] | None:
    """The LoadGen targets the baseline's same item ran with, when it is like-for-like."""
    base = baseline.find(current["benchmark"], current["scenario"], current["mode"])
    if base is None:
        return None
    for key in LIKE_FOR_LIKE:
        if key in base and current.get(key) != base.get(key):
            return None
    settings = base.get("settings") or {}
    found = {k: float(settings[k]) for k in TARGET_KEYS if _is_number(settings.get(k))}
    return found or None


def save_baseline(
    results_json: Path,
    records: Sequence[Mapping[str, Any]],
    target: Path,
    stopped: str | None = None,
) -> tuple[bool, str]:
    """Copy the run's ``results.json`` to ``target`` when the session ran to its end
    (``stopped``: why it did not) and no item failed, errored or was interrupted.

    A directory target gets ``results.json`` inside it. Returns (saved, message).
    """
    if target.is_dir():
        target = target / "results.json"
    cut = [r for r in records if r["verdict"]["outcome"] == Outcome.INTERRUPTED]
    if stopped is None and cut:
        stopped = f"{len(cut)} item(s) were interrupted"
    if stopped is not None:
        return False, (
            f"baseline NOT saved to {target}: {stopped}; a baseline must come from a complete run"
        )
    bad = [r for r in records if r["verdict"]["outcome"] in (Outcome.FAILED, Outcome.ERROR)]
    if bad:
        names = ", ".join(f"{r['benchmark']} {r['scenario']} {r['mode']}" for r in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        return False, (
            f"baseline NOT saved to {target}: {len(bad)} item(s) failed or errored "
            f"({names}{more}); a baseline must come from a good run"
        )
    try:
        text = results_json.read_text(encoding="utf-8")
        atomic_write_text(target, text)
    except OSError as exc:
        return False, f"baseline NOT saved to {target}: {exc.strerror or exc}"
    return True, f"baseline saved: {target} ({len(records)} items)"
