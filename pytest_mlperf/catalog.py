"""Benchmark definitions loaded from ``benchmarks/*.json`` and validated by schema."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf._paths import data_dir
from pytest_mlperf.errors import ConfigError, DataError
from pytest_mlperf.schemas import validate

SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")
CONFIG_VERS = ("default", "high_accuracy", "triton", "triton_high_accuracy")
#: The modes a run has (a compliance test is an item of its own, not a mode).
RUN_MODES = ("performance", "accuracy")
#: Seconds before a harness run is stopped when a benchmark file has no ``timeouts_s``
#: (keyed by shortened run or not).
DEFAULT_TIMEOUT_S = {True: 1800.0, False: 7200.0}


@dataclass(frozen=True, eq=False)
class Benchmark:
    """One benchmark family (``bert``) with its variants and scenario rules."""

    name: str
    round: str
    mlperf_conf_model: str
    accuracy_metric: str
    fp32_reference: float
    scenarios: Mapping[str, Mapping[str, Any]]
    variants: tuple[Variant, ...]
    reference: Mapping[str, Any] | None
    source: Path
    raw: Mapping[str, Any] = field(repr=False)

    def latency_bound_ms(self, scenario: str) -> float | None:
        """The scenario's latency bound (Server), or None."""
        bound = self.scenarios.get(scenario, {}).get("latency_bound_ms")
        return None if bound is None else float(bound)

    def harness_timeout(self, scenario: str, mode: str, fast: bool) -> tuple[float, str]:
        """Seconds before one harness run is stopped, and where the figure comes from.

        From ``timeouts_s/<mode>/<fast|full>/<scenario>`` in the benchmark file, else
        :data:`DEFAULT_TIMEOUT_S`.
        """
        run = "fast" if fast else "full"
        table = self.raw.get("timeouts_s")
        if table is None:
            return (
                DEFAULT_TIMEOUT_S[fast],
                f"built-in default for a {run} run ({self.source.name} has no timeouts_s)",
            )
        return float(table[mode][run][scenario]), (
            f"{self.source.name} timeouts_s/{mode}/{run}/{scenario}"
        )


@dataclass(frozen=True)
class Variant:
    """A benchmark at one accuracy target, e.g. ``bert-99.9``."""

    name: str
    family: str
    target_ratio: float
    target: float
    config_vers: tuple[str, ...]


class Catalog:
    """Every known benchmark, with name resolution for options and markers."""

    def __init__(self, benchmarks: Iterable[Benchmark]) -> None:
        self._families: dict[str, Benchmark] = {}
        self._variants: dict[str, tuple[Benchmark, Variant]] = {}
        for bench in benchmarks:
            if bench.name in self._families:
                other = self._families[bench.name].source
                raise DataError(f"{bench.source}: benchmark {bench.name!r} also in {other}")
            self._families[bench.name] = bench
            for variant in bench.variants:
                if variant.name in self._variants:
                    raise DataError(f"{bench.source}: variant {variant.name!r} defined twice")
                self._variants[variant.name] = (bench, variant)

    @property
    def families(self) -> tuple[str, ...]:
        """Short names (``bert``), which are aliases for a variant."""
        return tuple(self._families)

    @property
    def variant_names(self) -> tuple[str, ...]:
        """Full names (``bert-99``)."""
        return tuple(self._variants)

    def valid_names(self) -> str:
        """Every accepted benchmark name, for error messages."""
        return ", ".join([*self.families, *self.variant_names])

    def benchmark(self, variant: str) -> Benchmark:
        """The family a full variant name belongs to."""
        return self._variants[variant][0]

    def variant(self, name: str) -> Variant:
        """A variant by its full name."""
        return self._variants[name][1]

    def resolve(self, name: str, config_ver: str | None) -> Variant:
        """Resolve a user-given name (alias or full) under ``config_ver``.

        An alias picks the variant whose config_vers include ``config_ver``
        (``bert`` + ``high_accuracy`` → ``bert-99.9``; no config_ver → the first variant);
        a full name must agree with an explicit config_ver.
        """
        key = name.strip().lower()
        if key in self._families and config_ver is None:
            return self._families[key].variants[0]
        if key in self._variants and config_ver is None:
            return self._variants[key][1]
        if key in self._families:
            for variant in self._families[key].variants:
                if config_ver in variant.config_vers:
                    return variant
            raise ConfigError(
                f"benchmark {name!r} has no variant for config_ver {config_ver!r}; "
                f"its variants: {', '.join(v.name for v in self._families[key].variants)}"
            )
        if key in self._variants:
            variant = self._variants[key][1]
            if config_ver not in variant.config_vers:
                raise ConfigError(
                    f"benchmark {variant.name!r} does not run with config_ver {config_ver!r} "
                    f"(valid for it: {', '.join(variant.config_vers)}); "
                    f"use {variant.family!r} to pick the variant for {config_ver!r}"
                )
            return variant
        raise ConfigError(f"unknown benchmark {name!r}; valid: {self.valid_names()}")


def load_benchmark(path: Path) -> Benchmark:
    """Read and validate one benchmark file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read benchmark data: {exc}") from exc
    validate(raw, "benchmark", str(path))
    for variant in raw["variants"]:
        if not variant["name"].startswith(raw["name"] + "-"):
            raise DataError(
                f"{path}: field variants: name {variant['name']!r} must start with "
                f"{raw['name'] + '-'!r}"
            )
    reference = raw.get("reference")
    if reference is not None:
        for key in ("batch_size", "targets", "fast"):
            missing = [s for s in raw["scenarios"] if s not in reference[key]]
            if missing:
                raise DataError(f"{path}: field reference/{key}: no entry for {missing}")
    timeouts = raw.get("timeouts_s")
    if timeouts is not None:
        for mode in RUN_MODES:
            for run in ("fast", "full"):
                missing = [s for s in raw["scenarios"] if s not in timeouts[mode][run]]
                if missing:
                    raise DataError(
                        f"{path}: field timeouts_s/{mode}/{run}: no entry for {missing}"
                    )
    return Benchmark(
        name=raw["name"],
        round=raw["round"],
        mlperf_conf_model=raw["mlperf_conf_model"],
        accuracy_metric=raw["accuracy"]["metric"],
        fp32_reference=float(raw["accuracy"]["fp32_reference"]),
        scenarios=raw["scenarios"],
        variants=tuple(
            Variant(
                name=v["name"],
                family=raw["name"],
                target_ratio=float(v["target_ratio"]),
                target=float(v["target"]),
                config_vers=tuple(v["config_vers"]),
            )
            for v in raw["variants"]
        ),
        reference=reference,
        source=path,
        raw=raw,
    )


def default_dirs() -> list[Path]:
    """The benchmark data shipped with pytest-mlperf."""
    return [data_dir("benchmarks")]


def load_catalog(dirs: Iterable[Path]) -> Catalog:
    """Load every ``*.json`` directly under each directory (subdirectories hold other data)."""
    benchmarks: list[Benchmark] = []
    for directory in dirs:
        if not directory.is_dir():
            raise DataError(f"benchmark data directory {directory} does not exist")
        benchmarks.extend(load_benchmark(p) for p in sorted(directory.glob("*.json")))
    return Catalog(benchmarks)
