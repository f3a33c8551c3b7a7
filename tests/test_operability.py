"""Operable in CI and at a terminal (issue 16): typo-proof thresholds, the item-generation
rule, node ids and --lf, dashboard-ready JUnit/JSON, wording, host facts, progress, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunMlperf


def _thresholds(pytester: pytest.Pytester, entry: dict[str, Any], system: str = "*") -> None:
    body = {"schema_version": 1, "system": system, "thresholds": [entry]}
    pytester.makefile(".json", limits=json.dumps(body))


# -- 1. a thresholds or baseline entry that matches nothing is a usage error -----------------
@pytest.mark.parametrize(
    ("entry", "system", "expected"),
    [
        (
            {"benchmark": "bert99", "scenario": "Offline", "min_samples_per_second": 99999},
            "*",
            "*limits.json: entry bert99 Offline: unknown benchmark 'bert99' (did you mean "
            "'bert-99'*); valid: 3d-unet-99, 3d-unet-99.9, bert-99, bert-99.9",
        ),
        (
            {"benchmark": "bert", "scenario": "Offline", "min_samples_per_second": 99999},
            "*",
            "*entry bert Offline: unknown benchmark 'bert' (an alias: name the variant, "
            "bert-99 or bert-99.9); valid: *",
        ),
        (
            {"benchmark": "bert-99", "scenario": "Offline", "min_samples_per_second": 99999},
            "reference_cpu",
            "*limits.json: system 'reference_cpu' is not this run's system; valid: "
            "'reference-cpu' (the backend's, or --mlperf-system) or '[*]'",
        ),
        (
            {"benchmark": "3d-unet-99", "scenario": "Server", "min_samples_per_second": 1},
            "*",
            "*entry 3d-unet-99 Server: 3d-unet-99 does not define Server; valid for it: "
            "Offline, SingleStream",
        ),
        (
            {
                "benchmark": "bert-99",
                "scenario": "Offline",
                "config_ver": "high_accuracy",
                "min_samples_per_second": 1,
            },
            "*",
            "*bert-99 does not run with config_ver 'high_accuracy'; valid for it: default, triton",
        ),
    ],
)
def test_a_thresholds_entry_matching_nothing_is_a_usage_error(
    pytester: pytest.Pytester, entry: dict[str, Any], system: str, expected: str
) -> None:
    _thresholds(pytester, entry, system)
    result = pytester.runpytest(
        "--mlperf-benchmarks=bert", "--mlperf-backend=reference", "--mlperf-thresholds=limits.json"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "INTERNALERROR" not in result.stderr.str() + result.stdout.str()


def test_the_thresholds_system_is_checked_against_the_named_system(
    pytester: pytest.Pytester,
) -> None:
    _thresholds(
        pytester,
        {"benchmark": "bert-99", "scenario": "Offline", "min_samples_per_second": 1},
        "H100-SXM-80GBx8",
    )
    ok = pytester.runpytest(
        "--mlperf-benchmarks=bert",
        "--mlperf-system=H100-SXM-80GBx8",
        "--mlperf-thresholds=limits.json",
        "--collect-only",
    )
    assert ok.ret == pytest.ExitCode.OK
    bad = pytester.runpytest(
        "--mlperf-benchmarks=bert", "--mlperf-system=box", "--mlperf-thresholds=limits.json"
    )
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*system 'H100-SXM-80GBx8' is not this run's system; valid: 'box'*"])


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"benchmark": "bert-99", "scenario": "Offline", "max_latency_ms": 5},
            "*field thresholds/0: a Offline entry needs exactly one of min_samples_per_second or "
            "expected_samples_per_second (found: max_latency_ms)",
        ),
        (
            {"benchmark": "bert-99", "scenario": "Offline", "min_samples_per_sec": 5},
            "*field thresholds/0: unknown field 'min_samples_per_sec'; valid: benchmark, scenario*",
        ),
        (
            {"benchmark": "bert-99", "scenario": "offline", "min_samples_per_second": 5},
            "*field thresholds/0/scenario: unknown scenario 'offline'; valid: Offline, Server, SingleStream, MultiStream",
        ),
    ],
)
def test_schema_errors_name_the_field_and_the_valid_values(
    pytester: pytest.Pytester, entry: dict[str, Any], expected: str
) -> None:
    _thresholds(pytester, entry)
    result = pytester.runpytest("--mlperf-benchmarks=bert", "--mlperf-thresholds=limits.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "is not valid under any of the given schemas" not in result.stderr.str()


def test_a_baseline_item_matching_nothing_is_a_usage_error(pytester: pytest.Pytester) -> None:
    item = {
        "benchmark": "bert",
        "scenario": "Offline",
        "mode": "performance",
        "config_ver": "default",
        "system": "reference-cpu",
        "metric": {"name": "result_samples_per_second", "value": 1.0, "unit": "samples/s"},
    }
    pytester.makefile(".json", base=json.dumps({"schema_version": 1, "items": [item]}))
    result = pytester.runpytest("--mlperf-benchmarks=bert", "--mlperf-baseline=base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --mlperf-baseline: *base.json: items/0 (bert Offline performance): unknown "
            "benchmark 'bert' (an alias: name the variant, bert-99 or bert-99.9)*"
        ]
    )


def test_a_full_name_threshold_gates(run_mlperf: RunMlperf, pytester: pytest.Pytester) -> None:
    """The corrected entry (full name, right system) is applied: the impossible floor fails."""
    _thresholds(
        pytester,
        {"benchmark": "tiny-99", "scenario": "Offline", "min_samples_per_second": 1e9},
        "reference-cpu",
    )
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        "--mlperf-thresholds=limits.json",
    )
    result.assert_outcomes(failed=1)


def _unused(path: Path) -> None:  # pragma: no cover - keeps Path imported for later tests
    del path
