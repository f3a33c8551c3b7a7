"""Operable in CI and at a terminal (issue 16): typo-proof thresholds, the item-generation
rule, node ids and --lf, dashboard-ready JUnit/JSON, wording, host facts, progress, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.builders import limit, write_thresholds
from tests.conftest import RunMlperf


def _thresholds(pytester: pytest.Pytester, entry: dict[str, Any], system: str = "*") -> None:
    write_thresholds(pytester.path / "limits.json", entry, system=system)


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


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"mode": "TEST99"},
            "*items/0 (bert-99 Offline TEST99): unknown mode 'TEST99'; valid for it: "
            "performance, accuracy, TEST01",
        ),
        (
            {"mode": "TESTING"},
            "*items/0 (bert-99 Offline TESTING): unknown mode 'TESTING'; valid for it: *",
        ),
        (
            {"config_ver": "high_accuracy"},
            "*items/0 (bert-99 Offline performance): bert-99 does not run with config_ver "
            "'high_accuracy'; valid for it: default, triton",
        ),
    ],
)
def test_a_baseline_item_with_a_mode_or_config_ver_no_item_has(
    pytester: pytest.Pytester, change: dict[str, str], expected: str
) -> None:
    """As strict as thresholds: a mode or config_ver no item has would match nothing and
    pass silently; it is a usage error naming the entry and the valid values."""
    item = {
        "benchmark": "bert-99",
        "scenario": "Offline",
        "mode": "performance",
        "config_ver": "default",
        "system": "reference-cpu",
        "metric": {"name": "result_samples_per_second", "value": 1.0, "unit": "samples/s"},
        **change,
    }
    pytester.makefile(".json", base=json.dumps({"schema_version": 1, "items": [item]}))
    # --co: a baseline that is accepted must not start bert runs here
    result = pytester.runpytest("--mlperf-benchmarks=bert", "--mlperf-baseline=base.json", "--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --mlperf-baseline: " + expected])


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
    result.stdout.fnmatch_lines(["collected 1 item"])
    # no generated item ran (a "waiting for cpu-0" line may name another session's item)
    assert not [
        line for line in result.stdout.lines if line.startswith(("mlperf::", "FAILED mlperf::"))
    ]


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
    result = run_mlperf("mlperf::tiny-99[Offline-performance]", "--mlperf-fast", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["mlperf::tiny-99[[]Offline-performance[]] PASSED*"])
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


# -- 5. JUnit XML and results.json a dashboard can read ---------------------------------------
def test_junit_and_results_json_for_dashboards(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    import os
    import stat
    import xml.etree.ElementTree as ET

    from pytest_mlperf import __version__
    from pytest_mlperf.schemas import validate
    from tests.conftest import load_results

    write_thresholds(
        pytester.path / "limits.json",
        limit("tiny-99", "Offline", min_samples_per_second=1),
        limit("tiny-99", "SingleStream", max_latency_ms=5000),
        system="reference-cpu",
    )
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
        "--mlperf-thresholds=limits.json",
        "--junitxml=j.xml",
    )
    # a loaded machine can make the shortened SingleStream run INVALID: not the point here
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    root = ET.parse(pytester.path / "j.xml").getroot()
    suite: dict[Any, Any] = {
        p.get("name"): p.get("value") for p in root.find("testsuite/properties") or []
    }
    data = load_results(pytester.path)
    assert suite["mlperf/run/run_id"] == data["run_id"]
    assert suite["mlperf/run/fast"] == "True"
    assert suite["mlperf/run/config_ver"] == "per benchmark"
    assert suite["mlperf/run/plugin_version"] == __version__
    passed = sum(1 for i in data["items"] if i["verdict"]["outcome"] == "passed")
    assert suite["mlperf/run/total_items"] == "2"
    assert suite["mlperf/run/total_passed"] == str(passed)
    assert suite["mlperf/host/cpu_count"] == str(os.cpu_count())
    assert all(len(n.split("/")) == 3 for n in suite), suite  # mlperf/<run|host>/<field>
    cases = {c.get("name"): c for c in root.iter("testcase")}
    single: dict[Any, Any] = {
        p.get("name"): p.get("value")
        for p in cases["tiny-99[SingleStream-performance]"].iter("property")
    }
    prefix = "mlperf/tiny-99/SingleStream/performance"
    assert all(len(n.split("/")) == 5 and n.startswith(prefix) for n in single), single
    assert single[f"{prefix}/metric"] == "result_90.00_percentile_latency_ns"
    assert single[f"{prefix}/unit"] == "ms" and single[f"{prefix}/threshold_unit"] == "ms"
    assert single[f"{prefix}/threshold_operator"] == "<="
    assert float(single[f"{prefix}/threshold_value"] or 0) == 5000.0
    item = next(i for i in data["items"] if i["scenario"] == "SingleStream")
    p90_ms = item["loadgen"]["result_90.00_percentile_latency_ns"] / 1e6
    assert float(single[f"{prefix}/value"] or 0) == pytest.approx(p90_ms)
    assert float(single[f"{prefix}/p90_latency_ms"] or 0) == pytest.approx(p90_ms)
    # results.json: totals, the plugin version, the bound as numbers in one unit
    validate(data, "results", "results.json")
    assert data["totals"] == {
        "items": 2,
        "passed": passed,
        "failed": 2 - passed,
        "error": 0,
        "skipped": 0,
        "xfailed": 0,
        "interrupted": 0,
    }
    assert data["plugin_version"] == __version__
    bound = item["threshold_bound"]
    assert (bound["operator"], bound["value"], bound["unit"]) == ("<=", 5000.0, "ms")
    assert bound["metric_value"] == pytest.approx(p90_ms) and bound["met"] is True
    # results files are as readable as the logs beside them
    index = next((pytester.path / "mlperf-results").glob("*/results.json"))
    log_dir = Path(item["log_dir"])
    summary_mode = stat.S_IMODE((log_dir / "mlperf_log_summary.txt").stat().st_mode)
    assert stat.S_IMODE(index.stat().st_mode) == summary_mode
    assert stat.S_IMODE((log_dir / "result.json").stat().st_mode) == summary_mode


def test_results_files_follow_the_umask(tmp_path: Path) -> None:
    import os
    import stat

    from pytest_mlperf.results.store import atomic_write_json

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "results.json", {"a": 1})
        os.umask(0o077)
        atomic_write_json(tmp_path / "private.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600


# -- 6. terminal and CLI wording ------------------------------------------------------------
def test_terminal_wording(run_mlperf: RunMlperf, pytester: pytest.Pytester) -> None:
    _thresholds(
        pytester,
        {"benchmark": "tiny-99", "scenario": "SingleStream", "max_latency_ms": 1e-6},
        "reference-cpu",
    )
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
        "--mlperf-thresholds=limits.json",
        "-rf",
        "-vv",  # the short summary untrimmed, as in CI
    )
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    # the table's metric column matches its ms unit
    result.stdout.fnmatch_lines(["tiny-99*SingleStream*result_90.00_percentile_latency  *ms*"])
    assert "latency_ns  " not in out
    # the short summary line gives the reason first
    result.stdout.fnmatch_lines(
        [
            "FAILED mlperf::tiny-99[[]SingleStream-performance[]] - threshold: * ms "
            "(expected <= 1e-06 ms)*"
        ]
    )
    progress = [line for line in out.splitlines() if line.startswith("[mlperf]")]
    assert progress and not any("{'" in line for line in progress), progress
    assert any("LoadGen running (mlperf_conf_model=bert, " in line for line in progress)


def test_no_bare_location_line(run_mlperf: RunMlperf) -> None:
    result = run_mlperf("--mlperf-benchmarks=tiny", "--mlperf-scenarios=Offline", "--mlperf-fast")
    result.assert_outcomes(passed=1)
    lines = result.stdout.str().splitlines()
    assert "mlperf" not in [line.strip() for line in lines]
    result.stdout.fnmatch_lines(
        ["[[]mlperf[]] tiny-99 Offline performance: LoadGen done*", "mlperf .*"]
    )


def test_cli_says_what_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_mlperf import __version__
    from pytest_mlperf.cli import main

    assert main([]) == 2
    out = capsys.readouterr().out
    assert "runs MLPerf Inference benchmarks (bert, 3d-unet) as pytest items" in out
    assert "pytest --mlperf-benchmarks=bert,3d-unet" in out and "600 s per item" in out
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"pytest-mlperf {__version__} (pytest ")


def test_ini_values_are_read_without_config_inicfg(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest deprecates ``config.inicfg``; the plugin read it for every option."""

    def forbidden(self: pytest.Config) -> Any:
        raise AssertionError("config.inicfg used")

    monkeypatch.setattr(pytest.Config, "inicfg", property(forbidden))
    pytester.makeini("[pytest]\nmlperf_benchmarks = tiny\nmlperf_scenarios = Offline\n")
    result = run_mlperf("--collect-only", "-q")
    result.stdout.fnmatch_lines(["mlperf::tiny-99[[]Offline-performance[]]", "1 test collected*"])


# -- 7. host facts ---------------------------------------------------------------------------
def test_reference_host_record_has_cpu_and_memory(tmp_path: Path) -> None:
    import os

    from pytest_mlperf.backends.reference import ReferenceBackend

    host = ReferenceBackend(tmp_path).describe()
    assert host["cpu"] and host["cpu"] != host["cpu_arch"] or not Path("/proc/cpuinfo").exists()
    assert host["cpu_count"] == os.cpu_count()
    assert host["cpu_cores"] >= 1 and host["memory_gib"] > 0
    assert all(v not in (None, "", []) for k, v in host.items() if k != "work_done"), host


def test_host_table_has_no_empty_rows() -> None:
    from pytest_mlperf.report.html import host_rows
    from pytest_mlperf.report.junit import host_properties

    host: dict[str, Any] = {
        "cpu": "EPYC",
        "threads": None,
        "cpus": [],
        "hostname": "",
        "work_done": [],
    }
    assert host_rows(host) == [("cpu", "EPYC")]
    assert host_properties(host) == [("mlperf/host/cpu", "EPYC")]


# -- 2. progress ----------------------------------------------------------------------------
def test_progress_line_says_elapsed_expected_samples_and_eta() -> None:
    from pytest_mlperf.progress import ItemProgress

    now = [100.0]
    lines: list[tuple[str, bool]] = []
    item = ItemProgress(
        label="bert-99 Offline performance",
        emit=lambda line, redraw: lines.append((line, redraw)),
        tty=False,
        eta_after=lambda expected: 2 * expected,  # two more items like this one
        clock=lambda: now[0],
    )
    item.min_duration_s, item.min_queries, item.started = 600.0, 24576, 100.0
    now[0] = 140.0
    item.samples = 12345
    assert item.line() == (
        "bert-99 Offline performance: 40 s of >= 10 min 0 s minimum, 12,345 samples done "
        "(>= 24,576 queries required), session ETA ~29 min 20 s"
    )


def test_progress_is_a_line_per_interval_in_ci_and_a_redraw_at_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_mlperf import progress

    monkeypatch.delenv(progress.INTERVAL_ENV, raising=False)
    assert progress.interval_s(tty=False) == 30 and progress.interval_s(tty=True) == 1
    now = [0.0]
    for tty in (False, True):
        lines: list[tuple[str, bool]] = []
        item = progress.ItemProgress(
            "x",
            lambda line, redraw, out=lines: out.append((line, redraw)),  # type: ignore[misc]
            tty,
            clock=lambda: now[0],
        )
        progress.start_item(item)
        progress.loadgen_started(600.0, 100)  # the first line at once
        for t in (1.0, 10.0, 29.0, 31.0, 45.0, 62.0):  # samples complete over time
            now[0] = t
            progress.samples_done(1)
        progress.end_item()
        if tty:  # redrawn about once a second, then ended by an empty line
            assert all(r for _, r in lines[:-1]) and lines[-1] == ("", False)
            assert len(lines) == 1 + 6 + 1
        else:  # a new line at the start, then one per 30 s
            assert [r for _, r in lines] == [False] * 3
            assert [line.split(": ")[1].split(" of")[0] for line, _ in lines] == [
                "0.0 s",
                "31 s",
                "1 min 2 s",
            ]
        now[0] = 0.0


def test_progress_of_a_run_counts_samples(
    run_mlperf: RunMlperf, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLPERF_PROGRESS_INTERVAL", "0")
    result = run_mlperf(
        "--mlperf-benchmarks=tiny", "--mlperf-scenarios=SingleStream,Server", "--mlperf-fast"
    )
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)  # Server: timing
    result.stdout.fnmatch_lines(
        [
            "[[]mlperf[]] tiny-99 SingleStream performance: *, * samples done "
            "(>= 100 queries required), session ETA ~*",
            "[[]mlperf[]] tiny-99 Server performance: * samples done (>= 480 queries required)*",
        ]
    )


# -- 3. Ctrl-C says what happens; a second one exits; no figures from an interrupted run -----
LONG = """
def test_long(mlperf_run):
    mlperf_run("tiny", "SingleStream", fast=True, min_duration_ms={ms})
"""


def _start(pytester: pytest.Pytester, model_cache: Path, ms: int) -> Any:
    from tests.builders import pytest_process
    from tests.conftest import TINY_CONFTEST

    pytester.makeconftest(TINY_CONFTEST)
    pytester.makepyfile(test_long=LONG.format(ms=ms))
    env = {"PYTHONUNBUFFERED": "1", "MLPERF_PROGRESS_INTERVAL": "3600"}
    return pytest_process(pytester.path, f"--mlperf-cache-dir={model_cache}", env=env)


def _read_until(proc: Any, text: str, seen: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} never printed:\n{''.join(seen)}")


def test_second_interrupt_writes_results_and_exits(
    pytester: pytest.Pytester, model_cache: Path
) -> None:
    import signal

    # a 10-minute minimum duration: only the second Ctrl-C can end it within the timeout
    proc = _start(pytester, model_cache, 600_000)
    seen: list[str] = []
    try:
        _read_until(proc, "queries required", seen)  # LoadGen has started
        proc.send_signal(signal.SIGINT)
        _read_until(proc, "interrupted. LoadGen cannot be stopped mid-run", seen)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=600)  # a busy machine: never a timed assertion
    finally:
        proc.kill()
    text = "".join(seen) + out
    assert "(at most ~" in text and "10 min 0 s minimum duration" in text, text
    assert "Press Ctrl-C again to exit now" in text
    assert "second interrupt: writing results.json and exiting now" in text
    assert proc.returncode == pytest.ExitCode.INTERRUPTED
    results = next(pytester.path.glob("mlperf-results/*/results.json"))
    data = json.loads(results.read_text())
    assert [i["verdict"]["outcome"] for i in data["items"]] == ["interrupted"]
    assert data["items"][0]["metric"]["value"] is None and data["finished"]


def test_an_interrupted_summary_is_never_a_figure(
    pytester: pytest.Pytester, model_cache: Path
) -> None:
    import signal
    import subprocess
    import sys

    from pytest_mlperf.backends.reference.sut import INTERRUPTED_SUMMARY
    from pytest_mlperf.results.loadgen import INTERRUPTED_NOTE

    proc = _start(pytester, model_cache, 4_000)
    seen: list[str] = []
    try:
        _read_until(proc, "queries required", seen)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=600)  # a busy machine: never a timed assertion
    finally:
        proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, "".join(seen) + out
    item = json.loads(next(pytester.path.glob("mlperf-results/*/results.json")).read_text())[
        "items"
    ][0]
    assert item["verdict"]["outcome"] == "interrupted" and item["metric"]["value"] is None
    log_dir = Path(item["log_dir"])
    assert not (log_dir / "mlperf_log_summary.txt").exists()
    assert (log_dir / INTERRUPTED_SUMMARY).is_file() and (log_dir / INTERRUPTED_NOTE).is_file()
    parsed = subprocess.run(
        [sys.executable, "-m", "pytest_mlperf.cli", "parse", str(log_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert parsed.returncode != 0 and "samples_per_second" not in parsed.stdout
    assert "this LoadGen run was interrupted; its logs are not a result" in parsed.stderr


def test_progress_expects_the_query_count_when_it_takes_longer() -> None:
    from pytest_mlperf.backends.reference.sut import expected_seconds, make_settings
    from pytest_mlperf.progress import ItemProgress

    settings, _ = make_settings(
        "bert", "Server", "performance", {"target_qps": 9.6, "min_query_count": 480}
    )
    settings.min_duration_ms = 1000
    assert expected_seconds(settings, "Server") == 50.0  # 480 queries at 9.6/s, not 1 s
    item = ItemProgress(
        "bert-99 Server performance", lambda _l, _r: None, False, clock=lambda: 10.0
    )
    item.min_duration_s, item.min_queries, item.expected_s, item.started = 1.0, 480, 50.0, 0.0
    item.eta_after = lambda expected: expected  # one more item like this one
    assert item.line() == (
        "bert-99 Server performance: 10 s of ~50 s expected (>= 1.0 s minimum), "
        ">= 480 queries required, session ETA ~1 min 30 s"
    )


def test_a_directory_named_mlperf_stays_a_path(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    pytester.mkdir("mlperf")
    (pytester.path / "mlperf" / "test_dir.py").write_text("def test_in_dir():\n    pass\n")
    result = run_mlperf("mlperf", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["mlperf/test_dir.py::test_in_dir", "1 test collected*"])


def test_preparation_steps_say_when_they_start(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    fresh = pytester.path / "fresh-cache"
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        f"--mlperf-cache-dir={fresh}",  # the last one wins: nothing cached yet
    )
    result.stdout.fnmatch_lines(
        [
            "[[]mlperf[]] tiny: building the bert model (once, then cached) ...",
            "[[]mlperf[]] tiny: built model *",
            "[[]mlperf[]] tiny: quantizing the model to INT8 (once, then cached) ...",
            "[[]mlperf[]] tiny: quantized INT8 model *",
            "[[]mlperf[]] tiny Offline: calibrating targets to this machine ...",
            "[[]mlperf[]] tiny Offline: calibrated expected_qps=*",
        ]
    )
