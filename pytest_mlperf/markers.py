"""The ``@pytest.mark.mlperf(...)`` marker and ``mlperf_run``'s arguments, validated without pytest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_mlperf.catalog import RUN_MODES, Catalog
from pytest_mlperf.config import ItemSpec
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.thresholds import Threshold

#: Keyword overrides of LoadGen settings a hand-written run may give (reference backend).
OVERRIDES = (
    "target_qps",
    "expected_qps",
    "expected_latency_ms",
    "min_duration_ms",
    "min_query_count",
)
BOUNDS = ("max_latency_ms", "min_samples_per_second")
MARKER_KEYS = ("benchmark", "scenario", "mode", "config_ver", "fast", *BOUNDS, *OVERRIDES)


def resolve(
    catalog: Catalog, benchmark: str, scenario: str, mode: str, config_ver: str | None
) -> ItemSpec:
    """A validated item spec; every error names the bad value and the valid ones."""
    variant = catalog.resolve(benchmark, config_ver)
    defined = tuple(catalog.benchmark(variant.name).scenarios)
    match = [s for s in defined if s.lower() == str(scenario).lower()]
    if not match:
        raise ConfigError(
            f"{variant.name} does not define scenario {scenario!r}; valid for it: {', '.join(defined)}"
        )
    if mode not in RUN_MODES:
        raise ConfigError(f"invalid mode {mode!r}; valid: performance, accuracy")
    return ItemSpec(variant, match[0], mode, config_ver or variant.config_vers[0])


def loadgen_overrides(values: Mapping[str, Any]) -> dict[str, float]:
    """User-facing override names → the backend's setting names (ms → ns where needed)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if key not in OVERRIDES:
            raise ConfigError(f"unknown setting {key!r}; valid: {', '.join(OVERRIDES)}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{key}: {value!r} is not a non-negative number")
        if key == "expected_latency_ms":
            out["expected_latency_ns"] = float(value) * 1e6
        else:
            out[key] = float(value)
    return out


def marker_threshold(kwargs: Mapping[str, Any], spec: ItemSpec) -> Threshold | None:
    """A threshold from the marker's ``max_latency_ms`` / ``min_samples_per_second``."""
    given = {k: kwargs[k] for k in BOUNDS if k in kwargs}
    if not given:
        return None
    latency = spec.scenario in ("SingleStream", "MultiStream")
    if len(given) > 1 or ("max_latency_ms" in given) != latency:
        raise ConfigError(
            f"{spec.scenario} takes {'max_latency_ms' if latency else 'min_samples_per_second'}, got {', '.join(given)}"
        )
    value = float(next(iter(given.values())))
    return Threshold(
        "*",
        spec.variant.name,
        spec.scenario,
        None,
        None if latency else value,
        value if latency else None,
        "the @pytest.mark.mlperf marker",
    )


def marker_spec(
    catalog: Catalog, args: Sequence[object], kw: Mapping[str, Any]
) -> tuple[ItemSpec, dict[str, float], Threshold | None]:
    """Validate a ``@pytest.mark.mlperf(...)`` marker's ``args`` and ``kwargs``."""
    if args:
        raise ConfigError(f"takes keyword arguments only, got {tuple(args)!r}")
    unknown = [k for k in kw if k not in MARKER_KEYS]
    if unknown:
        raise ConfigError(f"unknown argument {unknown[0]!r}; valid: {', '.join(MARKER_KEYS)}")
    for required in ("benchmark", "scenario"):
        if required not in kw:
            raise ConfigError(f"missing {required}=")
    spec = resolve(
        catalog,
        kw["benchmark"],
        kw["scenario"],
        kw.get("mode", "performance"),
        kw.get("config_ver"),
    )
    overrides = loadgen_overrides({k: v for k, v in kw.items() if k in OVERRIDES})
    return spec, overrides, marker_threshold(kw, spec)
