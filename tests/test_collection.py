"""Generated items: ids, markers, and pytest's own selection options."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import limit, write_thresholds
from tests.conftest import TINY_DIR, RunMlperf

BERT_3DUNET = [
    "mlperf::bert-99[[]Offline-performance[]]",
    "mlperf::bert-99[[]Server-performance[]]",
    "mlperf::bert-99[[]SingleStream-performance[]]",
    "mlperf::3d-unet-99[[]Offline-performance[]]",
    "mlperf::3d-unet-99[[]SingleStream-performance[]]",
]


def test_one_item_per_benchmark_scenario_mode(run_mlperf: RunMlperf) -> None:
    result = run_mlperf(
        "--mlperf-benchmarks=bert,3d-unet", "--mlperf-mode=performance", "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines([*BERT_3DUNET, "5 tests collected*"])
    result = run_mlperf(
        "--mlperf-benchmarks=bert-99.9", "--mlperf-mode=all", "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(["*6 tests collected*"])


def test_collect_only_does_no_heavy_work(run_mlperf: RunMlperf, pytester: pytest.Pytester) -> None:
    result = run_mlperf("--mlperf-benchmarks=bert", "--collect-only")
    result.stdout.fnmatch_lines(
        ["*<MlperfCollector mlperf>*", "*<MlperfItem bert-99[[]Offline-performance[]]>*"]
    )
    assert "[mlperf]" not in result.stdout.str()  # no model build, no calibration
    assert not (pytester.path / "mlperf-results").exists()


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (["-m", "3d-unet and SingleStream"], ["mlperf::3d-unet-99[[]SingleStream-performance[]]"]),
        (["-m", "bert-99 and not Server"], ["*bert-99[[]Offline*", "*bert-99[[]SingleStream*"]),
        (["-m", "mlperf and Offline"], ["*bert-99[[]Offline*", "*3d-unet-99[[]Offline*"]),
        (["-k", "SingleStream"], ["*bert-99[[]SingleStream*", "*3d-unet-99[[]SingleStream*"]),
        (
            ["--deselect", "mlperf::bert-99[Server-performance]", "-m", "bert"],
            ["*bert-99[[]Offline*", "*bert-99[[]SingleStream*"],
        ),
    ],
)
def test_selection_options(
    run_mlperf: RunMlperf, selection: list[str], expected: list[str]
) -> None:
    result = run_mlperf(
        "--mlperf-benchmarks=bert,3d-unet", "--strict-markers", "--collect-only", "-q", *selection
    )
    result.stdout.fnmatch_lines([*expected, f"{len(expected)}/5 tests collected*"])


def test_last_failed_reruns_only_the_failed_item(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    write_thresholds(
        pytester.path / "limits.json", limit("tiny-99", "SingleStream", max_latency_ms=0.000001)
    )
    args = (
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
        "--mlperf-thresholds=limits.json",
    )
    first = run_mlperf(*args, "-p", "cacheprovider")
    first.assert_outcomes(passed=1, failed=1)
    second = run_mlperf(*args, "--lf", "-v")
    second.assert_outcomes(failed=1, deselected=1)
    second.stdout.fnmatch_lines(["*tiny-99[[]SingleStream-performance[]] FAILED*"])


def test_last_failed_in_a_directory_without_test_files_or_conftest(
    pytester: pytest.Pytester, model_cache: Path
) -> None:
    """Issue 26 point 9: the user's own command in a directory holding only the thresholds
    file (the tiny benchmark comes from a plugin module given with -p, not a conftest)."""
    pytester.makepyfile(
        tinyplug=f"from pathlib import Path\n\n"
        f"def pytest_mlperf_benchmark_dirs(config):\n    return [Path({str(TINY_DIR)!r})]\n"
    )
    pytester.syspathinsert()
    write_thresholds(
        pytester.path / "t.json", limit("tiny-99", "Offline", min_samples_per_second=1e12)
    )
    assert (
        not list(pytester.path.glob("test_*.py")) and not (pytester.path / "conftest.py").exists()
    )
    args = (
        "-p",
        "tinyplug",
        f"--mlperf-cache-dir={model_cache}",
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
        "--mlperf-thresholds=t.json",
    )
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1, failed=1)
    again = pytester.runpytest_subprocess(*args, "--lf", "-v")
    again.assert_outcomes(failed=1, deselected=1)
    again.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    assert "tiny-99[SingleStream-performance] PASSED" not in again.stdout.str()
