"""Fixtures and the ``mlperf`` marker for hand-written tests, sharing the session's backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pytest

from pytest_mlperf.checks import Outcome
from pytest_mlperf.config import ItemSpec
from pytest_mlperf.errors import ConfigError, MlperfError, RunFailed
from pytest_mlperf.markers import loadgen_overrides, marker_spec, resolve
from pytest_mlperf.report.junit import junit_properties
from pytest_mlperf.results.record import MlperfResult
from pytest_mlperf.stash import MARKER_FAILURE_KEY, SESSION_KEY, add_record
from pytest_mlperf.thresholds import Threshold

if TYPE_CHECKING:
    from pytest_mlperf.backends.base import Backend
    from pytest_mlperf.host.probe import HostRecord
    from pytest_mlperf.stash import SessionView


def _session(config: pytest.Config) -> SessionView:
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
        result = session.pipeline.run_item(
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
    spec, overrides, threshold = marker_spec(
        _session(request.config).catalog, marker.args, marker.kwargs
    )
    result = _run(request, spec, overrides, marker.kwargs.get("fast"), threshold)
    if result.record["verdict"]["outcome"] == Outcome.FAILED:
        from pytest_mlperf.report.terminal import failure_text

        request.node.stash[MARKER_FAILURE_KEY] = failure_text(result.record)
    return result
