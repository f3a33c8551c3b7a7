"""The Server target search: bisection on synthetic probes, and a real pytester run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_mlperf.backends.reference.calibrate import (
    Probe,
    SearchSettings,
    grid_points,
    judge_probe,
    search_server_target,
)
from tests.conftest import RunMlperf, load_results


def _threshold_probe(capacity: float, calls: list[float]):  # type: ignore[no-untyped-def]
    """A synthetic system: any target at or below ``capacity`` passes."""

    def probe(qps: float) -> Probe:
        calls.append(qps)
        return Probe(qps, 1e6, qps, qps <= capacity, "synthetic")

    return probe


@pytest.mark.parametrize("capacity_ratio", [0.95, 0.74, 0.5, 0.2, 0.06])
def test_search_finds_the_highest_passing_grid_point_then_backs_off(
    capacity_ratio: float,
) -> None:
    settings = SearchSettings(probes=12)
    calls: list[float] = []
    result = search_server_target(_threshold_probe(1000 * capacity_ratio, calls), 1000.0, settings)
    grid = grid_points(1000.0, settings)
    best = min(k for k, q in enumerate(grid) if q <= 1000 * capacity_ratio)
    assert result["found"] is True
    assert result["best_passing_qps"] == round(grid[best], 2)
    assert result["grid_index"] == best + settings.backoff_steps
    assert result["target_qps"] == round(grid[best + settings.backoff_steps], 2)
    assert len(calls) == len(result["probes"]) <= settings.budget
    assert calls[0] == pytest.approx(grid[settings.start])  # the first probe: grid[start]


@pytest.mark.parametrize("ceiling", [1000.0, 309.0, 37.0])
@pytest.mark.parametrize("start", [4, 0, 10])
def test_the_default_budget_ends_on_the_best_grid_point_wherever_it_lies(
    ceiling: float, start: int
) -> None:
    """Issue 26 point 8: 8 probes ended one step (7 %) short for some positions."""
    settings = SearchSettings(start=start)  # the default budget
    grid = grid_points(ceiling, settings)
    for best in range(settings.points):
        calls: list[float] = []
        result = search_server_target(
            _threshold_probe(grid[best] * (1 + 1e-9), calls), ceiling, settings
        )
        assert result["best_passing_qps"] == round(grid[best], 2), (best, result["probes"])
        assert len(calls) <= settings.budget


def test_the_grid_is_anchored_not_relative_to_the_timing() -> None:
    settings = SearchSettings()
    ratio = 1 / settings.step
    for ceiling in (0.5, 3.0, 97.0, 1000.0, 123456.0):
        grid = grid_points(ceiling, settings)
        assert grid[0] <= ceiling < grid[0] * ratio * (1 + 1e-9)  # the highest point below it
        assert all(a > b for a, b in zip(grid, grid[1:], strict=False))
        exponents = [math.log(q) / math.log(ratio) for q in grid]
        assert all(abs(e - round(e)) < 1e-6 for e in exponents)  # powers of 1/step


@pytest.mark.parametrize("ceilings", [(1000.0, 1040.0), (1000.0, 965.0), (250.0, 262.0)])
def test_two_timings_a_few_percent_apart_search_to_the_same_target(
    ceilings: tuple[float, float],
) -> None:
    """The machine's capacity is what it is; the timing's noise must not move the target."""
    capacity = 0.7 * min(ceilings)
    targets = {
        search_server_target(_threshold_probe(capacity, []), c, SearchSettings(probes=12))[
            "target_qps"
        ]
        for c in ceilings
    }
    assert len(targets) == 1, targets


def test_search_respects_its_probe_budget() -> None:
    calls: list[float] = []
    result = search_server_target(_threshold_probe(500.0, calls), 1000.0, SearchSettings(probes=2))
    assert len(calls) == 2
    assert [p["target_qps"] for p in result["probes"]] == [round(c, 3) for c in calls]


def test_search_without_a_passing_probe_says_so() -> None:
    calls: list[float] = []
    settings = SearchSettings(probes=20)
    result = search_server_target(_threshold_probe(0.0, calls), 1000.0, settings, 0.3)
    assert result["found"] is False and result["best_passing_qps"] is None
    assert all(not p["passed"] for p in result["probes"])
    assert result["target_qps"] == 300.0  # the load-factor rule, not a tiny probed rate
    assert result["grid_index"] is None


def test_probe_rule_latency_margin_errors_and_keeping_up() -> None:
    bound = 100e6  # 100 ms
    assert judge_probe(50, 59e6, 50, bound, 0.6).passed
    late = judge_probe(50, 61e6, 50, bound, 0.6)
    assert not late.passed and "61.0 ms > 0.6 x 100 ms" in late.why
    assert not judge_probe(50, 10e6, 40, bound, 0.6).passed  # completed < 90 % of target
    assert not judge_probe(50, 10e6, 50, bound, 0.6, errors=1).passed
    assert not judge_probe(50, None, 50, bound, 0.6).passed


def test_a_server_item_records_its_search(run_mlperf: RunMlperf, pytester: pytest.Pytester) -> None:
    result = run_mlperf(
        "--mlperf-benchmarks=tiny-99", "--mlperf-scenarios=Server", "--mlperf-fast", "-s"
    )
    result.stdout.fnmatch_lines(["*tiny Server: probe at *", "*tiny Server: searched (*probes*"])
    (item,) = load_results(pytester.path)["items"]
    search = item["calibration"]["search"]
    assert search["probes"] and all("p99_ms" in p for p in search["probes"])
    assert item["settings"]["target_qps"] == search["target_qps"]
    assert item["calibration"]["targets"] == {"target_qps": search["target_qps"]}
    assert search["settings"]["probe_ms"] == 200  # the tiny data's server_search


def test_a_pinned_server_target_is_not_searched(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps({"targets": {"tiny": {"Server": {"target_qps": 100}}}}))
    result = run_mlperf(
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Server",
        "--mlperf-fast",
        f"--mlperf-targets={targets}",
    )
    result.assert_outcomes(passed=1)  # 100/s on a model that serves thousands: cannot miss
    (item,) = load_results(pytester.path)["items"]
    assert item["settings"]["target_qps"] == 100
    assert item["calibration"] is None
    assert item["targets_source"] == f"--mlperf-targets {targets}"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "*--mlperf-targets: *is not JSON*"),
        ('{"targets": {"tiny": {"Serverr": {"target_qps": 1}}}}', "*Serverr*"),
        ('{"targets": {"tiny": {"Server": {"target_qps": -1}}}}', "*-1*"),
        ('{"targets": {"bert": {"Server": {"target_qps": 1}}}}', "*names bert*valid: tiny*"),
    ],
)
def test_a_bad_targets_file_is_a_usage_error(
    run_mlperf: RunMlperf, tmp_path: Path, content: str, expected: str
) -> None:
    targets = tmp_path / "targets.json"
    targets.write_text(content)
    result = run_mlperf("--mlperf-benchmarks=tiny", f"--mlperf-targets={targets}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "INTERNALERROR" not in result.stderr.str() + result.stdout.str()
