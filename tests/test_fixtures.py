"""Hand-written tests: mlperf_run, mlperf_result + @pytest.mark.mlperf, mlperf_host, mlperf_backend."""

from __future__ import annotations

import pytest

from tests.conftest import TINY_CONFTEST, RunMlperf, load_results

HAND_WRITTEN = """
import pytest
from pytest_mlperf.stash import SESSION_KEY

def test_offline_floor(mlperf_run):
    result = mlperf_run("tiny-99", "Offline", mode="performance", fast=True)
    assert result.validity == "VALID" or result.fast_mode_only_reasons
    assert result.samples_per_second > 100
    assert result.scenario == "Offline" and result.accuracy is None

def test_two_runs_with_overrides(mlperf_run):
    a = mlperf_run("tiny", "SingleStream", fast=True, min_query_count=64)
    b = mlperf_run("tiny", "SingleStream", fast=True, min_query_count=200)
    assert a.loadgen["effective_min_query_count"] == 64
    assert b.loadgen["effective_min_query_count"] == 200
    assert a.log_dir != b.log_dir
    assert a.latency_ns(90) > 0

@pytest.mark.mlperf(benchmark="tiny-99", scenario="SingleStream", max_latency_ms=600, fast=True)
def test_latency_marker(mlperf_result):
    assert mlperf_result.accuracy is None
    assert mlperf_result.latency_ns(90) < 600e6

def test_host_and_backend(mlperf_host, mlperf_backend, pytestconfig):
    assert mlperf_host.fabric_manager_matches_driver
    assert mlperf_host.gpus == []
    assert pytestconfig.stash[SESSION_KEY].backend() is mlperf_backend
"""


def test_fixtures_share_the_backend_with_generated_items(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_mine=HAND_WRITTEN)
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        "--html=report.html",
    )
    result.assert_outcomes(passed=5)
    out = result.stdout.str()
    assert (
        out.count("tiny: reusing cached model") + out.count("tiny: built model") == 1
    )  # one preparation
    assert out.count("tiny Offline: calibrated") == 1
    items = load_results(pytester.path)["items"]
    nodeids = [i["nodeid"] for i in items]
    assert nodeids.count("test_mine.py::test_two_runs_with_overrides") == 2
    assert (
        "test_mine.py::test_offline_floor" in nodeids
        and "test_mine.py::test_latency_marker" in nodeids
    )
    assert "mlperf::tiny-99[Offline-performance]" in nodeids
    assert 'id="mlperf-summary"' in (pytester.path / "report.html").read_text()
    assert "test_mine.py::test_latency_marker" in (pytester.path / "report.html").read_text()


def test_fixtures_work_without_any_mlperf_option(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(TINY_CONFTEST)
    pytester.makepyfile(test_mine=HAND_WRITTEN)
    monkeypatch.setenv("XDG_CACHE_HOME", str(pytester.path / "cache"))  # not an mlperf option
    result = pytester.runpytest("-k", "offline_floor or host")
    result.assert_outcomes(passed=2, deselected=2)
    assert "mlperf: backend" not in result.stdout.str()  # no header: nothing generated
    assert [i["nodeid"] for i in load_results(pytester.path)["items"]] == [
        "test_mine.py::test_offline_floor"
    ]


def test_marker_bound_fails_the_test_after_its_body(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        test_bound="""
import pytest

@pytest.mark.mlperf(benchmark="tiny", scenario="Offline", min_samples_per_second=1e12, fast=True)
def test_too_slow(mlperf_result):
    assert mlperf_result.samples_per_second > 0
"""
    )
    result = run_mlperf()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["threshold*>= 1e+12 samples/s*FAIL*from the @pytest.mark.mlperf marker"]
    )
    assert load_results(pytester.path)["items"][0]["verdict"]["outcome"] == "failed"


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            'benchmark="resnet", scenario="Offline"',
            "unknown benchmark 'resnet'; valid: 3d-unet, bert, tiny*",
        ),
        (
            'benchmark="3d-unet", scenario="Server"',
            "3d-unet-99 does not define scenario 'Server'; valid for it: Offline, SingleStream",
        ),
        (
            'benchmark="bert", scenario="Offline", max_latency_ms=5',
            "Offline takes min_samples_per_second, got max_latency_ms",
        ),
        (
            'benchmark="bert", scenario="Offline", batch=4',
            "unknown argument 'batch'; valid: benchmark, scenario*",
        ),
        ('scenario="Offline"', "missing benchmark="),
    ],
)
def test_marker_validation_is_a_usage_error(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        f"import pytest\n\n@pytest.mark.mlperf({marker})\ndef test_x(mlperf_result):\n    pass\n"
    )
    result = run_mlperf()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: *test_marker_validation_is_a_usage_error*::test_x: @pytest.mark.mlperf: {message}"
        ]
    )


def test_mlperf_run_bad_arguments(run_mlperf: RunMlperf, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
def test_bad(mlperf_run):
    mlperf_run("tiny", "Offline", batch_size=4)
"""
    )
    result = run_mlperf()
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        ["*mlperf_run: unknown setting 'batch_size'; valid: target_qps, expected_qps*"]
    )


def test_fixtures_under_xdist(run_mlperf: RunMlperf, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine=HAND_WRITTEN)
    result = run_mlperf(
        "-n", "2", "--mlperf-benchmarks=tiny", "--mlperf-scenarios=Offline", "--mlperf-fast"
    )
    result.assert_outcomes(passed=5)
    assert len(load_results(pytester.path)["items"]) == 5  # 1 generated + 4 hand-written runs
