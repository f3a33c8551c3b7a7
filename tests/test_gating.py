"""CI gating through pytest on the reference backend: baselines, thresholds with a tolerance,
compare, exit codes and the machine-readable outputs."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.schemas import validate
from tests.builders import limit, write_thresholds
from tests.conftest import RunMlperf, load_results, perf_record

TWO = ("--mlperf-benchmarks=tiny", "--mlperf-scenarios=Offline,SingleStream", "--mlperf-fast")


def _with_values(data: dict[str, Any], **values: float) -> dict[str, Any]:
    """A copy of a results.json with the metric of each named scenario replaced."""
    changed = copy.deepcopy(data)
    for it in changed["items"]:
        if it["scenario"] in values:
            it["metric"]["value"] = values[it["scenario"]]
    return changed


def _props(path: Path) -> dict[str | None, str | None]:
    return {p.get("name"): p.get("value") for p in ET.parse(path).getroot().iter("property")}


def test_baseline_regression_fails_improvement_passes(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    first = run_mlperf(*TWO, "--mlperf-save-baseline=saved/")  # a directory, made on demand
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(["baseline saved: *saved/results.json (2 items)"])
    base = json.loads((pytester.path / "saved" / "results.json").read_text())
    validate(base, "results", "saved/results.json")
    measured = {i["scenario"]: i["metric"]["value"] for i in base["items"]}

    # The saved run, edited: Offline a thousand times faster than this machine (so this run
    # regresses), SingleStream a thousand times slower (so this run improves) - margins no
    # change of load between the two runs can cross.
    edited = _with_values(
        base, Offline=measured["Offline"] * 1000, SingleStream=measured["SingleStream"] * 1000
    )
    (pytester.path / "edited.json").write_text(json.dumps(edited))
    result = run_mlperf(
        *TWO,
        "--mlperf-baseline=edited.json",
        "--mlperf-tolerance=10%",
        "--mlperf-save-baseline=new.json",
        "--junitxml=j.xml",
    )
    result.assert_outcomes(failed=1, passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "baseline*samples/s (-*%)*>= * samples/s (baseline * samples/s - 10 %)*FAIL*"
            "throughput regressed *% beyond the 10 % tolerance; baseline *edited.json (run *",
            "*MLPerf results*",
            "benchmark*verdict*baseline*change",
            "tiny-99*Offline*FAILED*-*% REGRESSED",
            "tiny-99*SingleStream*PASSED*-*% improved",
            "baseline: *edited.json (run *), tolerance 10 %",
            "baseline NOT saved to *new.json: 1 item(s) failed or errored (tiny-99 Offline *",
        ]
    )
    assert not (pytester.path / "new.json").exists()
    props = _props(pytester.path / "j.xml")
    offline = "mlperf/tiny-99/Offline/performance"
    single = "mlperf/tiny-99/SingleStream/performance"
    assert props[f"{offline}/verdict"] == "failed"
    assert props[f"{offline}/baseline_status"] == "regressed"
    assert float(props[f"{offline}/baseline_value"] or 0) == pytest.approx(
        measured["Offline"] * 1000
    )
    assert float(props[f"{offline}/baseline_delta_pct"] or 0) < -80
    assert props[f"{single}/baseline_status"] == "improved"
    assert float(props[f"{single}/baseline_delta_pct"] or 0) < -80
    assert props[f"{single}/baseline_tolerance_pct"] == "10.0"
    results = sorted((pytester.path / "mlperf-results").glob("*/results.json"))[-1]
    data = json.loads(results.read_text())
    validate(data, "results", "results.json")
    assert data["settings"]["baseline"].endswith("edited.json")
    assert data["settings"]["tolerance_pct"] == 10.0
    assert [i["baseline"]["status"] for i in data["items"]] == ["regressed", "improved"]
    assert [i["verdict"]["outcome"] for i in data["items"]] == ["failed", "passed"]


def test_unlike_or_missing_baseline_items_are_skips_with_reasons(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    baseline = {
        "schema_version": 1,
        "run_id": "saved-elsewhere",
        "items": [
            {
                "benchmark": "tiny-99",
                "scenario": "Offline",
                "mode": "performance",
                "config_ver": "default",
                "system": "H100-SXM-80GBx8",
                "fast": True,
                "metric": {"name": "result_samples_per_second", "value": 1.0, "unit": "samples/s"},
            }
        ],
    }
    pytester.makefile(".json", other=json.dumps(baseline))
    result = run_mlperf(*TWO, "--mlperf-baseline=other.json", "-rs")
    result.assert_outcomes(skipped=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED*: tiny-99[[]Offline-performance[]]: baseline not compared: not like-for-like: "
            "system reference-cpu here, H100-SXM-80GBx8 in the baseline",
            "SKIPPED*: tiny-99[[]SingleStream-performance[]]: baseline not compared: no tiny-99 "
            "SingleStream performance item in the baseline *other.json (run saved-elsewhere)",
            "tiny-99*Offline*SKIPPED*skipped",
        ]
    )
    items = load_results(pytester.path)["items"]
    assert [i["verdict"]["outcome"] for i in items] == ["skipped", "skipped"]
    assert items[0]["verdict"]["checks"][0]["passed"]  # the run itself was fine


def test_thresholds_with_a_tolerance_on_both_sides(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    write_thresholds(
        pytester.path / "limits.json",
        # far above any CPU: fails even at half of it
        limit("tiny-99", "Offline", expected_samples_per_second=1e9, tolerance=0.5),
        # a second per query: passes with the file's tolerance
        limit("tiny-99", "SingleStream", expected_latency_ms=900),
        system="reference-cpu",
        tolerance=0.9,
    )
    result = run_mlperf(*TWO, "--mlperf-thresholds=limits.json")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "threshold*>= 5e+08 samples/s (expected 1e+09 samples/s, tolerance 0.5)*FAIL*",
            "tiny-99*Offline*>= 5e+08 samples/s (expected 1e+09 samples/s, tolerance 0.5)*FAILED",
            "tiny-99*SingleStream*<= 1000 ms (expected 900 ms, tolerance 0.9)*PASSED*",
        ]
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mlperf-tolerance=-5"], "*--mlperf-tolerance: '-5' is not a percentage from 0*"),
        (["--mlperf-tolerance=lots"], "*--mlperf-tolerance: 'lots' is not a percentage*"),
        (["--mlperf-baseline=nope.json"], "*--mlperf-baseline: '*nope.json' does not exist"),
        (["--mlperf-baseline=junk.json"], "*--mlperf-baseline: *junk.json is not JSON*"),
        (
            ["--mlperf-baseline=data.json"],
            "*--mlperf-baseline: *data.json is not a pytest-mlperf results.json*",
        ),
        (["--mlperf-baseline=empty"], "*--mlperf-baseline: '*empty' holds no results.json*"),
        (
            ["--mlperf-save-baseline=junk.json/base.json"],
            "*--mlperf-save-baseline: '*junk.json' is a file, not a directory",
        ),
        (["--mlperf-compare", "data.json", "empty"], "*--mlperf-compare RUN_A: *data.json is not*"),
    ],
)
def test_bad_gating_input_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    pytester.makefile(".json", junk="{not json", data='{"a": 1}')
    pytester.mkdir("empty")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str()


def _saved(path: Path, offline: float, single_ns: float) -> Path:
    def rec(scenario: str, name: str, value: float, unit: str) -> dict[str, Any]:
        return perf_record("bert-99", scenario, name, value, unit, fast=False)

    path.mkdir(parents=True)
    data = {
        "schema_version": 1,
        "run_id": path.name,
        "finished": "2026-11-24T12:00:00+00:00",
        "items": [
            rec("Offline", "result_samples_per_second", offline, "samples/s"),
            rec("SingleStream", "result_90.00_percentile_latency_ns", single_ns, "ns"),
        ],
    }
    (path / "results.json").write_text(json.dumps(data))
    return path


def test_compare_prints_a_table_and_runs_nothing(pytester: pytest.Pytester) -> None:
    a = _saved(pytester.path / "runs" / "20261124-100000-1", 250.0, 4_000_000)
    b = _saved(pytester.path / "runs" / "20261124-110000-2", 200.0, 3_000_000)
    result = pytester.runpytest("--mlperf-compare", str(a), "runs")  # runs = its newest: b
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "A: *20261124-100000-1*results.json (run 20261124-100000-1)",
            "B: *20261124-110000-2*results.json (run 20261124-110000-2)",
            "benchmark*scenario*mode*config_ver*metric*A*B*unit*delta*change",
            "bert-99*Offline*performance*default*result_samples_per_second*250.00*200.00"
            "*samples/s*-20.0 %*worse",
            "bert-99*SingleStream*performance*default*result_90.00_percentile_latency_ns*4.000"
            "*3.000*ms*-25.0 %*better",
            "2 items: 1 worse, 1 better beyond ±5 %*",
        ]
    )
    assert not (pytester.path / "mlperf-results").exists()

    cli = [sys.executable, "-m", "pytest_mlperf.cli", "compare"]
    done = subprocess.run([*cli, str(a), str(b)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()
    assert table[:2] == [line for line in result.stdout.lines if line[:3] in ("A: ", "B: ")]
    assert table[4].split()[-3:] == ["-20.0", "%", "worse"]
    assert table[5].split()[-3:] == ["-25.0", "%", "better"]
    empty = pytester.mkdir("empty")
    bad = subprocess.run([*cli, str(a), str(empty)], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and not bad.stdout
    assert bad.stderr.splitlines() == [
        f"pytest-mlperf compare: RUN_B: {str(empty)!r} holds no results.json (looked for "
        "results.json and */results.json)"
    ]
