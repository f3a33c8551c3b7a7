"""Per-item harness timeouts: from the benchmark data, a fallback, and --mlperf-timeout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.backends.base import RunRequest
from pytest_mlperf.backends.nvidia import NvidiaBackend, NvidiaSettings
from pytest_mlperf.catalog import DEFAULT_TIMEOUT_S, default_dirs, load_benchmark, load_catalog
from pytest_mlperf.errors import DataError
from tests.conftest import TINY_DIR

SHIPPED = default_dirs()[0]


def test_default_timeout_comes_from_the_benchmark_data() -> None:
    catalog = load_catalog(default_dirs())
    bert, unet = catalog.benchmark("bert-99"), catalog.benchmark("3d-unet-99")
    # figures that differ from the built-in fallback, so only the data can give them
    assert bert.harness_timeout("Offline", "performance", False) == (
        3600.0,
        "bert.json timeouts_s/performance/full/Offline",
    )
    assert unet.harness_timeout("SingleStream", "performance", False)[0] == 10800.0
    assert unet.harness_timeout("SingleStream", "performance", True)[0] == 2700.0
    assert unet.harness_timeout("Offline", "accuracy", True) == (
        3600.0,
        "3d-unet.json timeouts_s/accuracy/fast/Offline",
    )
    # every shipped figure is the file's own
    for bench in (bert, unet):
        raw = json.loads(bench.source.read_text())["timeouts_s"]
        for mode in ("performance", "accuracy"):
            for run, fast in (("fast", True), ("full", False)):
                for scenario in bench.scenarios:
                    seconds, _ = bench.harness_timeout(scenario, mode, fast)
                    assert seconds == raw[mode][run][scenario]


def test_a_changed_figure_is_used(tmp_path: Path) -> None:
    raw = json.loads((SHIPPED / "bert.json").read_text())
    raw["timeouts_s"]["performance"]["fast"]["Server"] = 42
    (tmp_path / "bert.json").write_text(json.dumps(raw))
    bench = load_benchmark(tmp_path / "bert.json")
    assert bench.harness_timeout("Server", "performance", True)[0] == 42.0


def test_data_without_timeouts_falls_back() -> None:
    tiny = load_benchmark(TINY_DIR / "tiny.json")
    assert "timeouts_s" not in tiny.raw
    assert tiny.harness_timeout("Offline", "performance", True) == (
        DEFAULT_TIMEOUT_S[True],
        "built-in default for a fast run (tiny.json has no timeouts_s)",
    )
    assert tiny.harness_timeout("Server", "accuracy", False)[0] == 7200.0


def _edited(tmp_path: Path, edit: Any) -> Path:
    raw = json.loads((SHIPPED / "bert.json").read_text())
    edit(raw["timeouts_s"])
    path = tmp_path / "bert.json"
    path.write_text(json.dumps(raw))
    return path


def test_a_wrong_type_is_a_schema_error_naming_file_and_field(tmp_path: Path) -> None:
    path = _edited(tmp_path, lambda t: t["performance"]["fast"].update(Offline="1800"))
    with pytest.raises(DataError) as info:
        load_benchmark(path)
    assert str(info.value) == (
        f"{path}: field timeouts_s/performance/fast/Offline: '1800' is not of type 'number'"
    )
    negative = _edited(tmp_path, lambda t: t["accuracy"]["full"].update(Server=0))
    with pytest.raises(DataError, match=r"field timeouts_s/accuracy/full/Server: 0 is less"):
        load_benchmark(negative)
    unknown = _edited(tmp_path, lambda t: t["performance"]["full"].update(Sometimes=5))
    with pytest.raises(DataError, match=r"field timeouts_s/performance/full: 'Sometimes' is not"):
        load_benchmark(unknown)


def test_a_scenario_without_a_figure_is_refused(tmp_path: Path) -> None:
    path = _edited(tmp_path, lambda t: t["accuracy"]["fast"].pop("SingleStream"))
    with pytest.raises(DataError) as info:
        load_benchmark(path)
    assert str(info.value) == (
        f"{path}: field timeouts_s/accuracy/fast: no entry for ['SingleStream']"
    )


def test_a_wrong_type_is_a_usage_error(pytester: pytest.Pytester) -> None:
    data = pytester.mkdir("data")
    _edited(data, lambda t: t["accuracy"].update(fast=[1800]))
    pytester.makeconftest(
        "from pathlib import Path\n"
        "def pytest_mlperf_benchmark_dirs(config):\n"
        f"    return [Path({str(data)!r})]\n"
    )
    result = pytester.runpytest("--mlperf-benchmarks=bert", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *data/bert.json: field timeouts_s/accuracy/fast: [[]1800] is not of type 'object'"]
    )


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (None, (1800.0, "bert.json timeouts_s/accuracy/full/SingleStream")),
        (5.0, (5.0, "--mlperf-timeout")),
    ],
)
def test_the_option_overrides_the_data(
    tmp_path: Path, option: float | None, expected: tuple[float, str]
) -> None:
    catalog = load_catalog(default_dirs())
    backend = NvidiaBackend(NvidiaSettings(results_dir=tmp_path, devices=None, timeout_s=option))
    request = RunRequest(
        catalog.benchmark("bert-99"),
        catalog.variant("bert-99"),
        "SingleStream",
        "accuracy",
        "default",
        False,
        tmp_path,
    )
    assert backend.timeout_for(request) == expected
