"""Per-system performance thresholds: data files validated by ``schemas/thresholds``.

An entry gives either a bound (``min_samples_per_second``, ``max_latency_ms``) or an
expected value (``expected_samples_per_second``, ``expected_latency_ms``) with a
``tolerance``: the fraction of the expected performance that still passes
(throughput >= tolerance x expected, latency <= expected / tolerance).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlperf import jsonstrict
from pytest_mlperf._paths import data_dir
from pytest_mlperf.errors import ConfigError, DataError
from pytest_mlperf.schemas import validate

if TYPE_CHECKING:
    from pytest_mlperf.catalog import Catalog
    from pytest_mlperf.history.results_file import ResultsFile

#: Every field a thresholds entry may have.
ENTRY_FIELDS = (
    "benchmark",
    "scenario",
    "config_ver",
    "min_samples_per_second",
    "max_latency_ms",
    "expected_samples_per_second",
    "expected_latency_ms",
    "tolerance",
    "note",
)
TOP_FIELDS = ("schema_version", "system", "source", "tolerance", "thresholds")
#: The bound fields by scenario kind: throughput for Offline/Server, latency otherwise.
BOUND_FIELDS = {
    "Offline": ("min_samples_per_second", "expected_samples_per_second"),
    "Server": ("min_samples_per_second", "expected_samples_per_second"),
    "SingleStream": ("max_latency_ms", "expected_latency_ms"),
    "MultiStream": ("max_latency_ms", "expected_latency_ms"),
}


@dataclass(frozen=True)
class Threshold:
    """A bound on one benchmark×scenario for one system (``*`` = any)."""

    system: str
    benchmark: str
    scenario: str
    config_ver: str | None
    min_samples_per_second: float | None
    max_latency_ms: float | None
    source: str
    expected: float | None = None
    tolerance: float | None = None
    note: str | None = None

    def matches(self, system: str, benchmark: str, scenario: str, config_ver: str) -> bool:
        """Whether this threshold applies to the given run."""
        return (
            self.system in ("*", system)
            and self.benchmark == benchmark
            and self.scenario == scenario
            and self.config_ver in (None, config_ver)
        )

    @property
    def bound(self) -> tuple[str, float, str]:
        """The numeric bound: ``(operator, value, unit)``, e.g. ``(">=", 50.0, "samples/s")``."""
        if self.min_samples_per_second is not None:
            return ">=", self.min_samples_per_second, "samples/s"
        return "<=", float(self.max_latency_ms or 0.0), "ms"

    def bound_record(self, metric_value: float | None) -> dict[str, Any]:
        """``threshold_bound`` of a record: operator, value and unit, the metric in that unit
        (latencies: LoadGen's ns as ms), where the bound comes from, and whether it is met."""
        operator, value, unit = self.bound
        metric = None
        if metric_value is not None:
            metric = round(metric_value / 1e6, 6) if unit == "ms" else metric_value
        met = None if metric is None else (metric >= value if operator == ">=" else metric <= value)
        return {
            "operator": operator,
            "value": value,
            "unit": unit,
            "metric_value": metric,
            "met": met,
            "expected": self.expected,
            "tolerance": self.tolerance,
            "source": self.source,
        }

    def describe(self) -> str:
        """``>= 50 samples/s``, ``<= 20 ms``, or with a tolerance
        ``>= 64515 samples/s (expected 71683.3 samples/s, tolerance 0.9)``."""
        if self.min_samples_per_second is not None:
            text = f">= {self.min_samples_per_second:g} samples/s"
        else:
            text = f"<= {self.max_latency_ms:g} ms"
        if self.expected is not None and self.tolerance is not None and self.tolerance != 1:
            unit = "samples/s" if self.min_samples_per_second is not None else "ms"
            text += f" (expected {self.expected:g} {unit}, tolerance {self.tolerance:g})"
        return text


def _threshold(
    entry: dict[str, Any], system: str, default_tolerance: float, source: str
) -> Threshold:
    """One validated entry; an expected value becomes a bound through its tolerance."""
    min_sps = entry.get("min_samples_per_second")
    max_ms = entry.get("max_latency_ms")
    expected = None
    tolerance = None
    if "expected_samples_per_second" in entry:
        expected = float(entry["expected_samples_per_second"])
        tolerance = float(entry.get("tolerance", default_tolerance))
        min_sps = expected * tolerance
    elif "expected_latency_ms" in entry:
        expected = float(entry["expected_latency_ms"])
        tolerance = float(entry.get("tolerance", default_tolerance))
        max_ms = expected / tolerance
    return Threshold(
        system=system,
        benchmark=entry["benchmark"],
        scenario=entry["scenario"],
        config_ver=entry.get("config_ver"),
        min_samples_per_second=None if min_sps is None else round(float(min_sps), 6),
        max_latency_ms=None if max_ms is None else round(float(max_ms), 6),
        source=source,
        expected=expected,
        tolerance=tolerance,
        note=entry.get("note"),
    )


def load_thresholds(path: Path) -> list[Threshold]:
    """Read and validate one thresholds file."""
    try:
        raw = jsonstrict.load_file(path)
    except FileNotFoundError as exc:
        raise DataError(f"thresholds file {path} does not exist") from exc
    except (OSError, ValueError) as exc:  # also NaN/Infinity/1e309 and deep nesting
        raise DataError(f"{path}: cannot read thresholds: {exc}") from exc
    _check_fields(raw, str(path))
    validate(raw, "thresholds", str(path))
    default_tolerance = float(raw.get("tolerance", 1.0))
    return [_threshold(t, raw["system"], default_tolerance, str(path)) for t in raw["thresholds"]]


def shipped_threshold_files() -> list[Path]:
    """The thresholds shipped with pytest-mlperf (``benchmarks/thresholds/*.json``)."""
    directory = data_dir("benchmarks") / "thresholds"
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


class ThresholdTable:
    """Lookup over several files; a user file's entries win over shipped ones."""

    def __init__(self, levels: Iterable[Iterable[Threshold]]) -> None:
        """``levels`` in increasing precedence: any match in a later level wins."""
        self._items = [(level, t) for level, group in enumerate(levels) for t in group]

    @classmethod
    def load(cls, files: Iterable[Path]) -> ThresholdTable:
        """Load files in order of increasing precedence."""
        return cls(load_thresholds(path) for path in files)

    def lookup(
        self, system: str, benchmark: str, scenario: str, config_ver: str
    ) -> Threshold | None:
        """The threshold for a run from the highest level, the most specific there."""
        best: Threshold | None = None
        best_rank = (-1, -1, -1)
        for index, (level, t) in enumerate(self._items):
            if not t.matches(system, benchmark, scenario, config_ver):
                continue
            rank = (level, (t.system != "*") + (t.config_ver is not None), index)
            if rank >= best_rank:
                best, best_rank = t, rank
        return best


def _check_fields(raw: Any, source: str) -> None:
    """Name the bad field and the valid ones before the schema's generic messages."""
    if not isinstance(raw, dict):
        return  # the schema says what is wrong
    unknown = [k for k in raw if k not in TOP_FIELDS]
    if unknown:
        raise DataError(f"{source}: unknown field {unknown[0]!r}; valid: {', '.join(TOP_FIELDS)}")
    entries = raw.get("thresholds")
    if not isinstance(entries, list):
        return
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        where = f"{source}: field thresholds/{index}"
        unknown = [k for k in entry if k not in ENTRY_FIELDS]
        if unknown:
            raise DataError(
                f"{where}: unknown field {unknown[0]!r}; valid: {', '.join(ENTRY_FIELDS)}"
            )
        scenario = entry.get("scenario")
        if scenario is None:
            continue  # the schema: 'scenario' is a required property
        if scenario not in BOUND_FIELDS:
            raise DataError(
                f"{where}/scenario: unknown scenario {scenario!r}; valid: {', '.join(BOUND_FIELDS)}"
            )
        given = [k for fields in BOUND_FIELDS.values() for k in fields if k in entry]
        given = list(dict.fromkeys(given))
        valid = BOUND_FIELDS[scenario]
        if len(given) != 1 or given[0] not in valid:
            found = ", ".join(given) if given else "none"
            raise DataError(
                f"{where}: a {scenario} entry needs exactly one of {' or '.join(valid)} "
                f"(found: {found})"
            )


def check_thresholds(thresholds: Iterable[Threshold], catalog: Catalog, system: str | None) -> None:
    """Every entry must match something this run can select, else :class:`ConfigError`.

    The benchmark is a full variant name (``bert-99``, not the alias ``bert``: a thresholds
    entry belongs to one accuracy target), the scenario one that benchmark defines, the
    config_ver one the variant runs with, and the file's system this run's (or ``*``;
    ``system`` None: not known yet, checked once the backend names it).
    """
    for t in thresholds:
        where = f"{t.source}: entry {t.benchmark} {t.scenario}"
        variants = catalog.variant_names
        if t.benchmark not in variants:
            hint = _hint(catalog, t.benchmark)
            raise ConfigError(
                f"{where}: unknown benchmark {t.benchmark!r}{hint}; valid: {', '.join(variants)}"
            )
        defined = tuple(catalog.benchmark(t.benchmark).scenarios)
        if t.scenario not in defined:
            raise ConfigError(
                f"{where}: {t.benchmark} does not define {t.scenario}; valid for it: "
                f"{', '.join(defined)}"
            )
        config_vers = catalog.variant(t.benchmark).config_vers
        if t.config_ver is not None and t.config_ver not in config_vers:
            raise ConfigError(
                f"{where}: {t.benchmark} does not run with config_ver {t.config_ver!r}; "
                f"valid for it: {', '.join(config_vers)}"
            )
        if system is not None and t.system not in ("*", system):
            raise ConfigError(
                f"{t.source}: system {t.system!r} is not this run's system; valid: "
                f"{system!r} (the backend's, or --mlperf-system) or '*'"
            )


def check_baseline(baseline: ResultsFile, catalog: Catalog, option: str) -> None:
    """Every baseline item must name an item this run can select, else :class:`ConfigError`
    naming the item and the valid values: a variant, a scenario it defines, a mode an item
    has (a run mode or one of the benchmark's compliance tests), a config_ver it runs with.

    A like-for-like mismatch (system, another valid config_ver, fast) stays a skip with its
    reason: the item itself exists, the comparison cannot be made.
    """
    from pytest_mlperf.catalog import RUN_MODES

    variants = catalog.variant_names
    for index, item in enumerate(baseline.items):
        bench, scenario, mode = item["benchmark"], item["scenario"], item["mode"]
        where = f"{option}: {baseline.path}: items/{index} ({bench} {scenario} {mode})"
        if bench not in variants:
            hint = _hint(catalog, str(bench))
            raise ConfigError(
                f"{where}: unknown benchmark {bench!r}{hint}; valid: {', '.join(variants)}"
            )
        defined = tuple(catalog.benchmark(bench).scenarios)
        if scenario not in defined:
            raise ConfigError(
                f"{where}: {bench} does not define {scenario!r}; valid for it: {', '.join(defined)}"
            )
        tests = tuple(catalog.benchmark(bench).raw.get("compliance") or {})
        if mode not in RUN_MODES and mode not in tests:
            raise ConfigError(
                f"{where}: unknown mode {mode!r}; valid for it: {', '.join((*RUN_MODES, *tests))}"
            )
        config_ver = item.get("config_ver")
        config_vers = catalog.variant(bench).config_vers
        if config_ver is not None and config_ver not in config_vers:
            raise ConfigError(
                f"{where}: {bench} does not run with config_ver {config_ver!r}; "
                f"valid for it: {', '.join(config_vers)}"
            )


def _hint(catalog: Catalog, name: str) -> str:
    """`` (an alias: name the variant, bert-99 or bert-99.9)`` or `` (did you mean ...?)``."""
    import difflib

    key = name.strip().lower()
    full = [v for v in catalog.variant_names if catalog.variant(v).family == key]
    if full:
        return f" (an alias: name the variant, {' or '.join(full)})"
    close = difflib.get_close_matches(key, catalog.variant_names, n=2)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
