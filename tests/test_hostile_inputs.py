"""Hostile data files and option values: refused up front with a message, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_mlperf import jsonstrict
from pytest_mlperf.compare import compare_text
from pytest_mlperf.errors import ConfigError, DataError, MlperfError
from pytest_mlperf.history.results_file import load_results
from pytest_mlperf.option_values import available_cpus
from pytest_mlperf.pathcheck import checked_path
from pytest_mlperf.results.store import atomic_write_json
from pytest_mlperf.schemas import load_data_file
from pytest_mlperf.thresholds import load_thresholds

LONG = "x" * 256
DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("NaN", "non-finite number NaN"),
        ("Infinity", "non-finite number Infinity"),
        ("-Infinity", "non-finite number -Infinity"),
        ("1e309", "number 1e309 is out of range"),
        ("1" * 400, "integer of 400 digits"),
        (DEEP, "nested too deep"),
    ],
)
def test_strict_json_refuses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        jsonstrict.loads(f'{{"a": {text}}}')


def test_strict_json_reads_ordinary_json() -> None:
    assert jsonstrict.loads('{"a": [1, 2.5e3, -0.5, 18446744073709551615, null]}') == {
        "a": [1, 2500.0, -0.5, 18446744073709551615, None]
    }


def _thresholds(tmp_path: Path, value: str) -> Path:
    path = tmp_path / "t.json"
    path.write_text(
        '{"schema_version": 1, "system": "s", "thresholds": [{"benchmark": "bert-99", '
        f'"scenario": "SingleStream", "max_latency_ms": {value}}}]}}'
    )
    return path


@pytest.mark.parametrize("value", ["Infinity", "NaN", "1e309"])
def test_non_finite_threshold_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(DataError, match=r"t.json: cannot read thresholds: .*(non-finite|range)"):
        load_thresholds(_thresholds(tmp_path, value))


def test_deep_json_data_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(DEEP)
    with pytest.raises(DataError, match="cannot read thresholds: JSON nested too deep"):
        load_data_file(path, "thresholds", "thresholds")


def _results(tmp_path: Path, name: str, items: list[object]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"schema_version": 1, "items": items}))
    return path


def _item(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "benchmark": "bert-99",
        "scenario": "Offline",
        "mode": "performance",
        "config_ver": "default",
        "system": "s",
        "fast": True,
        "metric": {"name": "result_samples_per_second", "value": 10.0, "unit": "samples/s"},
        "verdict": {"outcome": "passed"},
    }
    item.update(changes)
    return item


@pytest.mark.parametrize(
    ("item", "why"),
    [
        (_item(benchmark=["bert-99"]), "items/0/benchmark is not a string"),
        (
            _item(metric={"name": {"x": 1}, "value": 1.0, "unit": "ns"}),
            "items/0/metric/name is not a string",
        ),
        (_item(verdict="passed"), "items/0/verdict is not an object with a string outcome"),
        (
            _item(metric={"name": "m", "value": "fast", "unit": "ns"}),
            "metric/value is not a number: 'fast'",
        ),
        (_item(fast="yes"), "items/0/fast is not true, false or null"),
        (_item(settings=[1]), "items/0/settings is not an object or null: \\[1\\]"),
        (_item(repeat="3"), "items/0/repeat is not an object or null: '3'"),
        (_item(repeat={"median": "9"}), "items/0/repeat/median is not a number: '9'"),
        (_item(repeat={"runs": [1]}), "items/0/repeat/runs is not a list of objects"),
    ],
)
def test_malformed_baseline_items_are_usage_errors(
    tmp_path: Path, item: dict[str, object], why: str
) -> None:
    path = _results(tmp_path, "bad.json", [item])
    with pytest.raises(ConfigError, match=f"--mlperf-baseline: .*{why}"):
        load_results(path, "--mlperf-baseline")
    good = _results(tmp_path, "good.json", [_item()])
    with pytest.raises(ConfigError, match=f"RUN_B: .*{why}"):
        compare_text(good, path, 5.0)


def test_nan_baseline_value_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text(json.dumps({"schema_version": 1, "items": [_item()]}).replace("10.0", "NaN"))
    with pytest.raises(ConfigError, match="not JSON: non-finite number NaN"):
        load_results(path, "--mlperf-baseline")


def test_compare_reads_a_null_value_with_a_verdict(tmp_path: Path) -> None:
    none = _item(metric={"name": "result_samples_per_second", "value": None, "unit": "samples/s"})
    lines = compare_text(
        _results(tmp_path, "a.json", [_item()]), _results(tmp_path, "b.json", [none]), 5.0
    )
    assert lines[-1].startswith("1 items: 0 worse, 0 better")
    assert "this run logged no metric value" in "\n".join(lines)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (f"/tmp/{LONG}/r", "has a component of 256 bytes"),
        ("a\0b", "contains a NUL byte"),
        ("/" + "a/" * 2100, "bytes long"),
    ],
)
def test_impossible_paths(value: str, why: str) -> None:
    with pytest.raises(ConfigError, match=f"--opt: the path .* {why}"):
        checked_path(value, "--opt")


@pytest.mark.parametrize(
    "option",
    [
        "--mlperf-results-dir",
        "--mlperf-thresholds",
        "--mlperf-baseline",
        "--mlperf-save-baseline",
        "--mlperf-cache-dir",
    ],
)
def test_overlong_path_options_are_usage_errors(pytester: pytest.Pytester, option: str) -> None:
    result = pytester.runpytest(f"{option}={pytester.path}/{LONG}/f.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {option}: the path * has a component of 256 bytes*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_nul_in_ini_results_dir_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmlperf_results_dir = res\0ults\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --mlperf-results-dir: the path * contains a NUL byte"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mlperf-timeout=inf"], "*--mlperf-timeout: 'inf' is not a finite number of seconds*"),
        (["--mlperf-timeout=nan"], "*--mlperf-timeout: 'nan' is not a positive number*"),
        (
            [f"--mlperf-threads={available_cpus() + 1}"],
            f"*--mlperf-threads: '{available_cpus() + 1}' is more than the {available_cpus()} "
            f"CPUs available to this process; valid: 1 to {available_cpus()}",
        ),
    ],
)
def test_unbounded_numbers_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])


def test_cli_with_overlong_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_mlperf.cli import main

    assert main(["parse", str(tmp_path / LONG)]) == 2
    assert "has a component of 256 bytes" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / LONG), str(tmp_path)]) == 2
    assert "RUN_A: the path" in capsys.readouterr().err


def test_non_finite_numbers_are_never_written(tmp_path: Path) -> None:
    with pytest.raises(MlperfError, match=r"items/0/metric/value is not a finite number"):
        atomic_write_json(tmp_path / "r.json", {"items": [{"metric": {"value": float("inf")}}]})
    assert not (tmp_path / "r.json").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "content", "expected"),
    [
        ("--mlperf-thresholds", DEEP, "*deep.json: cannot read thresholds: JSON nested too deep"),
        (
            "--mlperf-thresholds",
            '{"schema_version": 1, "system": "s", "thresholds": [{"benchmark": "bert-99", '
            '"scenario": "SingleStream", "max_latency_ms": Infinity}]}',
            "*deep.json: cannot read thresholds: non-finite number Infinity*",
        ),
        (
            "--mlperf-baseline",
            '{"schema_version": 1, "items": ' + DEEP + "}",
            "--mlperf-baseline: *deep.json is not JSON: JSON nested too deep",
        ),
    ],
)
def test_hostile_data_files_are_usage_errors(
    pytester: pytest.Pytester, option: str, content: str, expected: str
) -> None:
    (pytester.path / "deep.json").write_text(content)
    result = pytester.runpytest(f"{option}=deep.json", "--mlperf-benchmarks=bert")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_deep_or_non_finite_metadata_json_is_unreadable(tmp_path: Path) -> None:
    from pytest_mlperf.backends.nvidia.harness import read_metadata

    (tmp_path / "metadata.json").write_text('{"a": ' + DEEP + "}")
    assert read_metadata(tmp_path) is None
    (tmp_path / "metadata.json").write_text('{"result_samples_per_second": Infinity}')
    assert read_metadata(tmp_path) is None
    (tmp_path / "metadata.json").write_text('{"result_samples_per_second": 12.5}')
    assert read_metadata(tmp_path) == {"result_samples_per_second": 12.5}
