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
from typing import Any

from pytest_mlperf import jsonstrict
from pytest_mlperf._paths import data_dir
from pytest_mlperf.errors import DataError
from pytest_mlperf.schemas import validate


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
