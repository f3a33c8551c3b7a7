"""Accuracy on the reference backend: INT8 vs FP32, failures, the parse CLI, shipped data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

from pytest_mlperf.accuracy.evaluate import assess_accuracy
from pytest_mlperf.backends.base import AccuracyData, Backend, RunRequest, no_progress
from pytest_mlperf.backends.reference import ReferenceBackend
from pytest_mlperf.backends.reference.quantize import ensure_quantized
from pytest_mlperf.catalog import default_dirs, load_catalog
from pytest_mlperf.results.loadgen import ACCURACY, parse_dir
from pytest_mlperf.results.record import MlperfResult
from tests.conftest import TINY_DIR, RunMlperf, load_results
from tests.loadgen_runs import run_tiny, tiny_catalog


def test_default_config_runs_int8_and_reports_its_ratio(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-mode=accuracy",
        "--mlperf-fast",
    )
    result.stdout.fnmatch_lines(["*[[]mlperf[]] tiny: * INT8 model *(onnxruntime.quantization*"])
    items = load_results(pytester.path)["items"]
    assert len(items) == 2
    for item in items:
        accuracy = item["accuracy"]
        assert item["config_ver"] == "default" and accuracy["precision"] == "int8"
        assert item["settings"]["precision"] == "int8"
        assert accuracy["threshold"] == pytest.approx(99.0)  # 99 % of the recorded FP32 100
        assert accuracy["ratio"] == pytest.approx(accuracy["value"] / 100.0, abs=1e-6)
        expected = "passed" if accuracy["value"] >= 99.0 else "failed"
        assert item["verdict"]["outcome"] == expected
        assert accuracy["accuracy_pass"] is (expected == "passed")
        record = MlperfResult(item)
        assert record.accuracy_pass is accuracy["accuracy_pass"]
        assert record.accuracy_metric() == accuracy["value"]
        assert record.accuracy_metric("exact_match") == accuracy["metrics"][1]["value"]
    # static quantization: a sample's answer does not depend on the batch it ran in
    assert items[0]["accuracy"]["metrics"] == items[1]["accuracy"]["metrics"]


def _brief(pytester: pytest.Pytester, fp32_f1: float) -> None:
    """A copy of tiny whose recorded FP32 F1 is ``fp32_f1``."""
    tiny = json.loads((TINY_DIR / "tiny.json").read_text())
    tiny["name"] = "brief"
    for v in tiny["variants"]:
        v["name"] = v["name"].replace("tiny", "brief")
    tiny["reference"]["accuracy"]["fp32_reference"]["F1"] = fp32_f1
    data_dir = pytester.mkdir("brief")
    (data_dir / "brief.json").write_text(json.dumps(tiny))
    pytester.makeconftest(
        "from pathlib import Path\n"
        "def pytest_mlperf_benchmark_dirs(config):\n"
        f"    return [Path({str(data_dir)!r})]\n"
    )


def test_accuracy_below_target_fails_listing_every_metric(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    """FP32 scores 100 but the data claims 101: 99.9 % of it is out of reach."""
    _brief(pytester, 101.0)
    result = run_mlperf(
        "--mlperf-benchmarks=brief",
        "--mlperf-scenarios=Offline",
        "--mlperf-mode=accuracy",
        "--mlperf-config-ver=high_accuracy",
        "--mlperf-fast",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "brief-99.9 Offline accuracy (reference, system reference-cpu, config_ver high_accuracy, fast)",
            "metric: F1 = 100.000 %",
            "check*value*expected*result*detail",
            "responses*samples scored*every sample once*ok*",
            "F1*100.000*>= 100.899 (99.9 % of FP32 101.000)*FAIL*ratio to FP32 reference 0.9901 (fp32)",
            "accuracy*value*threshold*FP32 reference*ratio*pass",
            "F1*100.000*100.899*101.000*0.9901*FAIL",
            "exact_match*100.000*-*100.000*1.0000*-",
            "precision fp32; target 99.9 % of FP32; FP32 reference: brief.json reference.accuracy*",
            "logs: *brief-99.9/Offline/accuracy",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    item = load_results(pytester.path)["items"][0]
    assert item["verdict"]["outcome"] == "failed"
    assert item["accuracy"]["accuracy_pass"] is False
    assert item["threshold"] == "F1 >= 100.899"


def test_a_backend_without_a_data_set_leaves_accuracy_unevaluated(tmp_path: Path) -> None:
    catalog = tiny_catalog()
    request = RunRequest(
        catalog.benchmark("tiny-99"),
        catalog.variant("tiny-99"),
        "Offline",
        "accuracy",
        "default",
        True,
        tmp_path,
    )
    (tmp_path / ACCURACY).write_text('[\n{"seq_id": 0, "qsl_idx": 0, "data": "00"}\n]\n')

    class Plain:
        name = "plain"

    plain = cast(Backend, Plain())  # no AccuracyProvider: only its name is read
    verdict, accuracy, threshold = assess_accuracy(plain, request, None, tmp_path, no_progress)
    assert verdict.outcome == "xfailed" and accuracy is None and threshold is None
    assert verdict.reasons == [
        "accuracy not evaluated: the accuracy log holds 1 responses, "
        "but the plain backend names no data set"
    ]


def test_parse_cli_scores_an_accuracy_log(model_cache: Path, tmp_path: Path) -> None:
    backend = ReferenceBackend(model_cache)
    out = run_tiny(backend, tmp_path / "acc", "Offline", mode="accuracy", variant="tiny-99.9")
    catalog = tiny_catalog()
    request = RunRequest(
        catalog.benchmark("tiny-99.9"),
        catalog.variant("tiny-99.9"),
        "Offline",
        "accuracy",
        "high_accuracy",
        True,
        out,
    )
    data = backend.accuracy_data(request, no_progress)
    backend.close()
    assert isinstance(data, AccuracyData)

    def parse(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest_mlperf.cli", "parse", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    done = parse(str(out), "--dataset", str(data.dataset))
    assert done.returncode == 0, done.stderr
    accuracy = json.loads(done.stdout)["accuracy"]
    # run_tiny used config_ver default (int8): what the INT8 model scores, no target
    assert accuracy["metric"] == "F1" and 0 < accuracy["value"] <= 100
    assert accuracy["threshold"] is None and accuracy["accuracy_pass"] is None
    assert accuracy["logged"] == accuracy["samples"]
    done = parse(
        str(out), "--dataset", str(data.dataset), "--benchmark=bert-99", "--fp32-reference=100"
    )
    accuracy = json.loads(done.stdout)["accuracy"]
    assert accuracy["threshold"] == 99.0
    assert accuracy["accuracy_pass"] is (accuracy["value"] >= 99.0)
    missing = parse(str(parse_dir(out) and tmp_path), "--dataset", str(data.dataset))
    assert missing.returncode != 0 and missing.stdout == ""
    (tmp_path / "mlperf_log_detail.txt").write_bytes((out / "mlperf_log_detail.txt").read_bytes())
    missing = parse(str(tmp_path), "--dataset", str(data.dataset))
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"pytest-mlperf parse: no {ACCURACY} in {tmp_path}: nothing to score against {data.dataset}"
    )


def test_quantized_model_and_evaluation_set_are_deterministic(tmp_path: Path) -> None:
    catalog = tiny_catalog()
    bench = catalog.benchmark("tiny-99")
    paths = []
    for name in ("a", "b"):
        backend = ReferenceBackend(tmp_path / name)
        request = RunRequest(
            bench, catalog.variant("tiny-99"), "Offline", "accuracy", "default", True, tmp_path
        )
        data = backend.accuracy_data(request, no_progress)
        assert data is not None
        model = backend._model(bench, "int8", no_progress)
        paths.append((model, data.dataset))
        backend.close()
    (model_a, set_a), (model_b, set_b) = paths
    assert model_a.name == model_b.name and model_a.read_bytes() == model_b.read_bytes()
    assert set_a.name == set_b.name and set_a.read_bytes() == set_b.read_bytes()
    # the cache is reused, not rebuilt
    again, built = ensure_quantized(
        model_a.with_name(model_a.name.split(".int8-")[0] + ".onnx"),
        bench.reference["quantization"],  # type: ignore[index]
        list,
    )
    assert again == model_a and not built


@pytest.mark.parametrize(
    ("variant", "config_ver"),
    [("bert-99", "default"), ("3d-unet-99", "default"), ("3d-unet-99.9", "high_accuracy")],
)
def test_shipped_reference_scores_hold(
    variant: str, config_ver: str, model_cache: Path, tmp_path: Path
) -> None:
    """INT8 reaches the 99 % target; FP32 scores exactly what the benchmark data records.

    (bert's FP32 run is left out to keep the suite fast: tiny covers it, and bert's
    evaluation set is made by the same FP32 pass.)
    """
    catalog = load_catalog(default_dirs())
    bench = catalog.benchmark(variant)
    recorded = bench.reference["accuracy"]["fp32_reference"]  # type: ignore[index]
    backend = ReferenceBackend(model_cache)
    request = RunRequest(
        bench, catalog.variant(variant), "Offline", "accuracy", config_ver, True, tmp_path
    )
    backend.run(request, no_progress)
    verdict, accuracy, _ = assess_accuracy(
        backend, request, parse_dir(tmp_path), tmp_path, no_progress
    )
    backend.close()
    assert accuracy is not None
    assert verdict.outcome == "passed", verdict.reasons
    assert accuracy["samples"] == accuracy["scored"] == bench.reference["samples"]  # type: ignore[index]
    if config_ver == "high_accuracy":
        assert accuracy["precision"] == "fp32"
        assert {m["name"]: m["value"] for m in accuracy["metrics"]} == recorded
    else:
        assert accuracy["precision"] == "int8"
        assert 0.99 <= accuracy["ratio"] < 1.0  # a real, measurable quantisation loss
