"""Baselines: compare each item's metric with a previous run's ``results.json``.

A comparison is made only between like runs: the same benchmark, scenario and mode (the
key an item is looked up by) and the same config_ver, system, shortened-run flag and
metric. Anything else is *skipped* with the reason, never passed. Throughput (Offline,
Server) regresses when it drops below ``baseline x (1 - tolerance)``; latency
(SingleStream p90, MultiStream p99) when it rises above ``baseline x (1 + tolerance)``.

No pytest here: the session and the ``compare`` command use these functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlperf import jsonstrict
from pytest_mlperf.checks import SKIP, Check, Outcome, Verdict, decide, ok_if
from pytest_mlperf.errors import ConfigError, DataError
from pytest_mlperf.pathcheck import checked_path
from pytest_mlperf.results.store import atomic_write_text
from pytest_mlperf.verdict import format_metric

#: results.json versions this code can read.
READABLE_SCHEMA_VERSIONS = (1,)
DEFAULT_TOLERANCE_PCT = 5.0
REGRESSED, IMPROVED, UNCHANGED = "regressed", "improved", "unchanged"
#: A comparison that could not be made (a comparison status, not an item outcome).
SKIPPED = "skipped"
#: What makes two records of the same item comparable, besides benchmark/scenario/mode.
LIKE_FOR_LIKE = ("config_ver", "system", "fast")
_PERCENT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%?\s*$")


def parse_tolerance(value: str, option: str = "--mlperf-tolerance") -> float:
    """A tolerance in percent: ``5``, ``5%`` or ``2.5 %``; 0 <= value < 100."""
    match = _PERCENT.match(value)
    pct = float(match.group(1)) if match else -1.0
    if not 0 <= pct < 100:
        raise ConfigError(
            f"{option}: {value!r} is not a percentage from 0 to below 100 (e.g. 5 or 5%)"
        )
    return pct


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

    def describe(self) -> str:
        """``path (run <id>, system <s>, backend <b>)``."""
        parts = [f"run {self.run_id}"]
        if self.system:
            parts.append(f"system {self.system}")
        if self.backend:
            parts.append(f"backend {self.backend}")
        if self.fast:
            parts.append("fast")
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
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise DataError(f"{where}/metric/value is not a number: {_short(value)}")
    verdict = item.get("verdict", {})
    if not isinstance(verdict, dict) or not isinstance(verdict.get("outcome", ""), str):
        raise DataError(f"{where}/verdict is not an object with a string outcome")
    return item


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


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one metric with its baseline."""

    status: str  # regressed | improved | unchanged | skipped
    value: float | None
    baseline_value: float | None
    unit: str | None
    tolerance_pct: float
    reason: str
    source: str
    delta_pct: float | None = None
    bound: float | None = None

    @property
    def skipped(self) -> bool:
        """True when no comparison could be made."""
        return self.status == SKIPPED

    def to_dict(self) -> dict[str, Any]:
        """The record's ``baseline`` object."""
        return {
            "status": self.status,
            "value": self.value,
            "baseline_value": self.baseline_value,
            "unit": self.unit,
            "delta_pct": None if self.delta_pct is None else round(self.delta_pct, 3),
            "tolerance_pct": self.tolerance_pct,
            "bound": self.bound,
            "reason": self.reason,
            "source": self.source,
        }

    def check(self) -> Check:
        """The verdict line for this comparison."""
        if self.skipped:
            return Check(
                "baseline",
                "not compared",
                "-",
                SKIP,
                self.reason,
                gives=Outcome.SKIPPED,
                reason=f"baseline not compared: {self.reason}",
            )
        shown = format_metric(self.value, self.unit)
        if self.delta_pct is not None:
            shown += f" ({self.delta_pct:+.1f} %)"
        op = ">=" if self.unit == "samples/s" else "<="
        sign = "-" if self.unit == "samples/s" else "+"
        bound = (
            f"{op} {format_metric(self.bound, self.unit)} (baseline "
            f"{format_metric(self.baseline_value, self.unit)} {sign} {self.tolerance_pct:g} %)"
        )
        return Check("baseline", shown, bound, ok_if(self.status != REGRESSED), self.reason)


def _mismatches(current: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    found = []
    for key in LIKE_FOR_LIKE:
        if key in base and current.get(key) != base.get(key):
            found.append(f"{key} {current.get(key)} here, {base.get(key)} in the baseline")
    name, base_name = current["metric"]["name"], base["metric"]["name"]
    if name and base_name and name != base_name:
        found.append(f"metric {name} here, {base_name} in the baseline")
    return found


def compare_pair(
    current: Mapping[str, Any], base: Mapping[str, Any], tolerance_pct: float, source: str
) -> Comparison:
    """Compare the metric of ``current`` with that of ``base`` (records of one item)."""
    metric = current["metric"]
    value, unit = metric["value"], metric["unit"]
    base_value = base["metric"]["value"]

    def skip(reason: str) -> Comparison:
        return Comparison(SKIPPED, value, base_value, unit, tolerance_pct, reason, source)

    mismatches = _mismatches(current, base)
    if mismatches:
        return skip("not like-for-like: " + "; ".join(mismatches))
    if base_value is None or base_value <= 0:
        outcome = base.get("verdict", {}).get("outcome", "?")
        return skip(f"the baseline run has no metric value (its verdict: {outcome})")
    if value is None:
        return skip("this run logged no metric value")
    if unit not in ("samples/s", "ns"):
        return skip(f"unknown metric unit {unit!r}")
    higher_is_better = unit == "samples/s"
    tol = tolerance_pct / 100.0
    delta = (value - base_value) / base_value * 100.0
    if higher_is_better:
        bound = base_value * (1 - tol)
        regressed, improved = value < bound, value > base_value * (1 + tol)
    else:
        bound = base_value * (1 + tol)
        regressed, improved = value > bound, value < base_value * (1 - tol)
    what = "throughput" if higher_is_better else "latency"
    if regressed:
        status = REGRESSED
        reason = f"{what} regressed {abs(delta):.1f} % beyond the {tolerance_pct:g} % tolerance"
    elif improved:
        status = IMPROVED
        reason = f"{what} improved {abs(delta):.1f} % over the baseline"
    else:
        status = UNCHANGED
        reason = f"{what} within ±{tolerance_pct:g} % of the baseline ({delta:+.1f} %)"
    return Comparison(
        status,
        value,
        base_value,
        unit,
        tolerance_pct,
        f"{reason}; baseline {source}",
        source,
        delta_pct=delta,
        bound=bound,
    )


def compare_to_baseline(
    current: Mapping[str, Any], baseline: ResultsFile, tolerance_pct: float
) -> Comparison:
    """Compare an item's record (needs the keys of a result record) with the baseline run."""
    source = baseline.describe()
    base = baseline.find(current["benchmark"], current["scenario"], current["mode"])
    if base is None:
        metric = current["metric"]
        return Comparison(
            SKIPPED,
            metric["value"],
            None,
            metric["unit"],
            tolerance_pct,
            f"no {current['benchmark']} {current['scenario']} {current['mode']} item in the "
            f"baseline {source}",
            source,
        )
    return compare_pair(current, base, tolerance_pct, source)


def with_baseline(verdict: Verdict, comparison: Comparison) -> Verdict:
    """Add the baseline line to a verdict.

    A regression fails the item. A comparison that could not be made turns an otherwise
    passing item into a skipped one (with the reason): the gate was not evaluated, so it
    is not reported as passed.
    """
    return decide([comparison.check()], prior=verdict)


def save_baseline(
    results_json: Path, records: Sequence[Mapping[str, Any]], target: Path
) -> tuple[bool, str]:
    """Copy the run's ``results.json`` to ``target`` when no item failed or errored.

    A directory target gets ``results.json`` inside it. Returns (saved, message).
    """
    if target.is_dir():
        target = target / "results.json"
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
