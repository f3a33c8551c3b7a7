"""Fixtures and the ``mlperf`` marker for hand-written tests, sharing the session's backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlperf.catalog import RUN_MODES, Catalog
from pytest_mlperf.config import ItemSpec
from pytest_mlperf.errors import ConfigError, MlperfError
from pytest_mlperf.items import RunFailed, add_record
from pytest_mlperf.report.junit import junit_properties
from pytest_mlperf.results.record import MlperfResult
from pytest_mlperf.thresholds import Threshold

if TYPE_CHECKING:
    from pytest_mlperf.backends.base import Backend
    from pytest_mlperf.host.probe import HostRecord
    from pytest_mlperf.session import MlperfSession

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
#: A failed marker bound, judged after the test body ran (see MlperfSession.pytest_runtest_call).
MARKER_FAILURE_KEY = pytest.StashKey[str]()


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
    catalog: Catalog, marker: pytest.Mark
) -> tuple[ItemSpec, dict[str, float], Threshold | None]:
    """Validate a ``@pytest.mark.mlperf(...)`` marker."""
    if marker.args:
        raise ConfigError(f"takes keyword arguments only, got {marker.args!r}")
    unknown = [k for k in marker.kwargs if k not in MARKER_KEYS]
    if unknown:
        raise ConfigError(f"unknown argument {unknown[0]!r}; valid: {', '.join(MARKER_KEYS)}")
    for required in ("benchmark", "scenario"):
        if required not in marker.kwargs:
            raise ConfigError(f"missing {required}=")
    kw = marker.kwargs
    spec = resolve(
        catalog,
        kw["benchmark"],
        kw["scenario"],
        kw.get("mode", "performance"),
        kw.get("config_ver"),
    )
    overrides = loadgen_overrides({k: v for k, v in kw.items() if k in OVERRIDES})
    return spec, overrides, marker_threshold(kw, spec)


def _session(config: pytest.Config) -> MlperfSession:
    from pytest_mlperf.plugin import SESSION_KEY

    return config.stash[SESSION_KEY]


def _run(
    request: pytest.FixtureRequest,
    spec: ItemSpec,
    overrides: Mapping[str, float],
    fast: bool | None,
    threshold: Threshold | None,
) -> MlperfResult:
    session = _session(request.config)
    item = request.node
    try:
        result = session.run_item(
            spec, item.nodeid, overrides, fast=fast, threshold_override=threshold
        )
    except RunFailed as exc:
        add_record(item, exc.result.record)
        if isinstance(exc.cause, MlperfError):
            raise pytest.fail.Exception(str(exc.cause), pytrace=False) from None
        raise exc.cause from None
    add_record(item, result.record)
    item.user_properties.extend(junit_properties(result.record))
    return result


@pytest.fixture(scope="session")
def mlperf_backend(pytestconfig: pytest.Config) -> Backend:
    """The session's prepared backend — the same one the generated items use."""
    try:
        return _session(pytestconfig).backend()
    except MlperfError as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


@pytest.fixture(scope="session")
def mlperf_host(mlperf_backend: Backend) -> HostRecord:
    """The host record: GPUs, driver, fabric manager… (nvidia) or CPU facts (reference)."""
    return mlperf_backend.host_record()


@pytest.fixture
def mlperf_run(
    request: pytest.FixtureRequest, mlperf_backend: Backend
) -> Callable[..., MlperfResult]:
    """Run one benchmark×scenario×mode; the result also lands in results.json and the reports.

    ``mlperf_run("bert-99", "Offline", mode="performance", config_ver=None, fast=None,
    **overrides)`` with overrides among target_qps, expected_qps, expected_latency_ms,
    min_duration_ms, min_query_count.
    """
    catalog = _session(request.config).catalog

    def run(
        benchmark: str,
        scenario: str,
        mode: str = "performance",
        *,
        config_ver: str | None = None,
        fast: bool | None = None,
        **overrides: float,
    ) -> MlperfResult:
        try:
            spec = resolve(catalog, benchmark, scenario, mode, config_ver)
            values = loadgen_overrides(overrides)
        except ConfigError as exc:
            raise pytest.UsageError(f"mlperf_run: {exc}") from None
        return _run(request, spec, values, fast, None)

    return run


@pytest.fixture
def mlperf_result(request: pytest.FixtureRequest, mlperf_backend: Backend) -> MlperfResult:
    """The result of the run the test's ``@pytest.mark.mlperf(...)`` marker describes.

    The marker's ``max_latency_ms`` / ``min_samples_per_second`` (and LoadGen validity) are
    judged too: the test fails after its body when they are not met.
    """
    marker = request.node.get_closest_marker("mlperf")
    if marker is None or not marker.kwargs:
        raise pytest.UsageError(
            f"{request.node.nodeid}: mlperf_result needs @pytest.mark.mlperf(benchmark=..., scenario=...)"
        )
    spec, overrides, threshold = marker_spec(_session(request.config).catalog, marker)
    result = _run(request, spec, overrides, marker.kwargs.get("fast"), threshold)
    if result.record["verdict"]["outcome"] == "failed":
        from pytest_mlperf.report.terminal import failure_text

        request.node.stash[MARKER_FAILURE_KEY] = failure_text(result.record)
    return result
