"""Operable in CI and at a terminal (issue 16): typo-proof thresholds, the item-generation
rule, node ids and --lf, dashboard-ready JUnit/JSON, wording, host facts, progress, Ctrl-C."""

from __future__ import annotations

import json
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


# -- 10. modifiers configure; a selection (or no test path at all) generates items -----------
MINE = """
def test_mine(mlperf_run):
    result = mlperf_run("tiny", "Offline")
    assert result.record["fast"] is True
"""


def test_a_modifier_with_a_test_path_generates_nothing(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_mine=MINE)
    result = run_mlperf("test_mine.py", "--mlperf-fast", "--mlperf-backend=reference")
    result.assert_outcomes(passed=1)
    assert "mlperf::" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "generated"),
    [
        (["--mlperf-fast", "--collect-only", "-q"], True),  # no test path at all
        (["--mlperf-config-ver=default", "--collect-only", "-q"], True),
        (["test_mine.py", "--mlperf-fast", "--collect-only", "-q"], False),
        (["test_mine.py", "--mlperf-backend=reference", "--collect-only", "-q"], False),
        (["test_mine.py", "--mlperf-benchmarks=tiny", "--collect-only", "-q"], True),
        (["test_mine.py", "--mlperf-scenarios=Offline", "--collect-only", "-q"], True),
        (["test_mine.py", "--mlperf-mode=accuracy", "--collect-only", "-q"], True),
    ],
)
def test_items_are_generated_only_for_a_selection(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, args: list[str], generated: bool
) -> None:
    pytester.makepyfile(test_mine=MINE)
    out = run_mlperf(*args).stdout.str()
    assert ("mlperf::tiny-99[" in out) is generated, out


def test_an_ini_modifier_alone_generates_nothing(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    pytester.makeini("[pytest]\nmlperf_fast = true\nmlperf_backend = reference\n")
    pytester.makepyfile(test_mine=MINE)
    result = run_mlperf("--collect-only", "-q")
    assert "mlperf::" not in result.stdout.str()
    result.stdout.fnmatch_lines(["test_mine.py::test_mine", "1 test collected*"])


# -- 4. node ids pass back; --lf reruns the failed item --------------------------------------
def test_a_printed_node_id_can_be_passed_back(run_mlperf: RunMlperf) -> None:
    result = run_mlperf("mlperf::tiny-99[SingleStream-performance]", "--mlperf-fast", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["mlperf::tiny-99[[]SingleStream-performance[]] PASSED*"])
    # a variant outside the default selection, and the whole collector
    listed = run_mlperf("mlperf::tiny-99.9", "mlperf::tiny-99[Offline-accuracy]", "--co", "-q")
    listed.stdout.fnmatch_lines(
        [
            "mlperf::tiny-99.9[[]Offline-performance[]]",
            "mlperf::tiny-99.9[[]MultiStream-performance[]]",
            "mlperf::tiny-99[[]Offline-accuracy[]]",
            "5 tests collected*",
        ]
    )
    everything = run_mlperf("mlperf", "--mlperf-benchmarks=tiny", "--co", "-q")
    everything.stdout.fnmatch_lines(["4 tests collected*"])


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        (
            "mlperf::tiny[Offline-performance]",
            "*unknown benchmark 'tiny' (a node id names the variant); valid: *tiny-99, tiny-99.9",
        ),
        (
            "mlperf::tiny-99[Batch-performance]",
            "*tiny-99 does not define 'Batch'; valid for it: Offline, Server, SingleStream, MultiStream",
        ),
        (
            "mlperf::tiny-99[Offline-perf]",
            "*unknown mode 'perf'; valid: performance, accuracy, TEST01",
        ),
    ],
)
def test_a_bad_node_id_is_a_usage_error(run_mlperf: RunMlperf, nodeid: str, expected: str) -> None:
    result = run_mlperf(nodeid, "--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    prefix, rest = expected[1:].split("*") if "; valid: *" in expected else (expected[1:], "")
    assert f"ERROR: {nodeid}: {prefix}" in result.stderr.str()
    assert rest in result.stderr.str()


def test_last_failed_beside_hand_written_tests(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    """--lf in a project with its own (failing) tests: only the failures run again."""
    pytester.makepyfile(
        test_own="def test_own_fails():\n    assert False\n\ndef test_own_ok():\n    pass\n"
    )
    _thresholds(
        pytester, {"benchmark": "tiny-99", "scenario": "SingleStream", "max_latency_ms": 1e-6}
    )
    args = (
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
        "--mlperf-thresholds=limits.json",
        "-p",
        "cacheprovider",
    )
    first = run_mlperf(*args)
    first.assert_outcomes(passed=2, failed=2)
    again = run_mlperf(*args, "--lf", "-v")
    again.assert_outcomes(failed=2, deselected=1)  # test_own.py's passing test: not collected
    out = again.stdout.str()
    assert "run-last-failure: rerun previous 2 failures" in out
    assert "tiny-99[SingleStream-performance] FAILED" in out
    assert "tiny-99[Offline-performance] PASSED" not in out
    by_id = run_mlperf("mlperf::tiny-99[SingleStream-performance]", *args[2:], "--lf", "-v")
    by_id.assert_outcomes(failed=1)
