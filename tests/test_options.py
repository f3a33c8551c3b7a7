"""Options and ini values: defaults, validation, usage errors that name the bad value."""

from __future__ import annotations

import pytest

from tests.builders import write_thresholds
from tests.conftest import RunMlperf


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*MLPerf Inference benchmarks*", "*--mlperf-benchmarks=BENCHMARKS*"]
    )
    for name in ("scenarios", "mode", "config-ver", "backend", "fast", "results-dir", "thresholds"):
        assert f"--mlperf-{name}" in result.stdout.str()
    assert "mlperf_benchmarks" in result.stdout.str()  # the ini key


def test_without_mlperf_options_nothing_changes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "mlperf: backend" not in out and "MLPerf results" not in out and "[mlperf]" not in out
    assert not (pytester.path / "mlperf-results").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--mlperf-benchmarks=resnet"],
            "unknown benchmark 'resnet'; valid: 3d-unet, bert, 3d-unet-99, *, bert-99.9",
        ),
        (["--mlperf-benchmarks="], "*--mlperf-benchmarks: empty value*"),
        (["--mlperf-benchmarks=bert,,3d-unet"], "*empty list element*"),
        (
            ["--mlperf-scenarios=Batch"],
            "*unknown scenario 'Batch'; valid: Offline, Server, SingleStream, MultiStream",
        ),
        (
            ["--mlperf-benchmarks=3d-unet", "--mlperf-scenarios=Server"],
            "*3d-unet-99 does not define Server in MLPerf Inference v4.1; valid for it: Offline, SingleStream",
        ),
        (
            ["--mlperf-mode=fast"],
            "*--mlperf-mode: invalid value 'fast'; valid: performance, accuracy, all",
        ),
        (
            ["--mlperf-config-ver=int8"],
            "*invalid value 'int8'; valid: default, high_accuracy, triton*",
        ),
        (["--mlperf-backend=tpu"], "*unknown backend 'tpu'; valid: auto, reference, nvidia"),
        (
            ["--mlperf-harness-dir=/no/such/dir"],
            "*--mlperf-harness-dir: '/no/such/dir' is not a directory",
        ),
        (
            ["--mlperf-devices=gpu0"],
            "*--mlperf-devices: invalid device 'gpu0'; valid: all, none, GPU indexes (0,1), GPU-<uuid> or MIG-<uuid>",
        ),
        (["--mlperf-timeout=-5"], "*--mlperf-timeout: '-5' is not a positive number of seconds"),
        (
            ["--mlperf-provision=yes"],
            "*--mlperf-provision: invalid value 'yes'; valid: off, plan, apply",
        ),
        (
            ["--mlperf-thresholds=nope.json"],
            "*--mlperf-thresholds: file 'nope.json' does not exist",
        ),
        (["--mlperf-threads=0"], "*--mlperf-threads: '0' is not a positive integer"),
        (
            ["--mlperf-calibrate=maybe"],
            "*--mlperf-calibrate: invalid value 'maybe'; valid: on, off",
        ),
        (
            ["--mlperf-benchmarks=bert-99", "--mlperf-config-ver=high_accuracy"],
            "*'bert-99' does not run with config_ver 'high_accuracy'*use 'bert'*",
        ),
    ],
)
def test_bad_input_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmlperf_mode = sometimes\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --mlperf-mode: invalid value 'sometimes'*"])


def test_malformed_benchmark_data_names_file_and_field(pytester: pytest.Pytester) -> None:
    bad = pytester.mkdir("bad")
    (bad / "broken.json").write_text(
        '{"schema_version": 1, "name": "broken", "round": "v4.1", "mlperf_conf_model": "bert",'
        ' "accuracy": {"metric": "F1", "fp32_reference": "high"}, "scenarios": {"Offline": {}},'
        ' "variants": [{"name": "broken-99", "target_ratio": 0.99, "target": 1,'
        ' "config_vers": ["default"]}]}'
    )
    pytester.makeconftest(
        "from pathlib import Path\n"
        "def pytest_mlperf_benchmark_dirs(config):\n"
        f"    return [Path({str(bad)!r})]\n"
    )
    result = pytester.runpytest("--mlperf-benchmarks=bert")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *broken.json: field accuracy/fp32_reference: 'high' is not of type 'number'"]
    )


def test_malformed_thresholds_file(pytester: pytest.Pytester) -> None:
    write_thresholds(pytester.path / "limits.json", {"benchmark": "bert-99"}, system="x")
    result = pytester.runpytest("--mlperf-thresholds=limits.json", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *limits.json: field thresholds/0: 'scenario' is a required property"]
    )
    pytester.makefile(".json", notjson="{nope")
    result = pytester.runpytest("--mlperf-thresholds=notjson.json", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *notjson.json: cannot read thresholds:*"])


def test_ini_settings_enable_the_plugin(run_mlperf: RunMlperf, pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nmlperf_benchmarks = tiny\nmlperf_scenarios = offline, singlestream\nmlperf_mode = all\n"
    )
    result = run_mlperf("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "mlperf::tiny-99[[]Offline-performance[]]",
            "mlperf::tiny-99[[]Offline-accuracy[]]",
            "mlperf::tiny-99[[]SingleStream-performance[]]",
            "mlperf::tiny-99[[]SingleStream-accuracy[]]",
            "4 tests collected*",
        ]
    )


def test_high_accuracy_promotes_aliases(run_mlperf: RunMlperf) -> None:
    result = run_mlperf(
        "--mlperf-benchmarks=bert,3d-unet",
        "--mlperf-config-ver=high_accuracy",
        "--collect-only",
        "-q",
    )
    result.stdout.fnmatch_lines(
        [
            "mlperf::bert-99.9[[]Offline-performance[]]",
            "*3d-unet-99.9[[]SingleStream-performance[]]",
        ]
    )
    assert "bert-99[" not in result.stdout.str()


def test_triton_is_refused_by_the_reference_backend(run_mlperf: RunMlperf) -> None:
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline",
        "--mlperf-config-ver=triton",
        "--mlperf-fast",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*BackendError: the reference backend cannot run config_ver 'triton'; valid: default, high_accuracy*"
        ]
    )


def test_nvidia_backend_without_a_scratch_path_errors_each_item_with_the_reason(
    pytester: pytest.Pytester,
) -> None:
    harness = pytester.mkdir("harness")
    result = pytester.runpytest(
        "--mlperf-backend=nvidia",
        f"--mlperf-harness-dir={harness}",
        "--mlperf-devices=none",
        "--mlperf-benchmarks=bert",
        "--mlperf-scenarios=Offline",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*could not be prepared: --mlperf-scratch-path is required*"])
    assert "INTERNALERROR" not in result.stdout.str()


def test_auto_is_reference_without_gpus(pytester: pytest.Pytester) -> None:
    harness = pytester.mkdir("harness")
    result = pytester.runpytest(
        f"--mlperf-harness-dir={harness}", "--mlperf-benchmarks=bert", "--collect-only"
    )
    result.stdout.fnmatch_lines(["mlperf: backend=reference *"])
