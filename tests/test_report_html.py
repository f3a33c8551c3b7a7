"""HTML report pieces without a browser: plots from real LoadGen logs, summary, host rows."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.backends.reference import ReferenceBackend
from pytest_mlperf.report.html import host_rows, item_html, summary_html
from pytest_mlperf.report.plots import TRACE, item_plots, percentile_points, read_trace
from pytest_mlperf.results.loadgen import parse_dir
from tests.loadgen_runs import run_tiny


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> dict[str, Path]:
    """A real Server run (the reference backend traces it) and a real Offline run."""
    backend = ReferenceBackend(model_cache)
    root = tmp_path_factory.mktemp("report-logs")
    return {
        s: run_tiny(backend, root / s, s, overrides={"min_duration_ms": 0})
        for s in ("Server", "Offline")
    }


def _record(log_dir: Path, scenario: str, **extra: Any) -> dict[str, Any]:
    parsed = parse_dir(log_dir)
    return {
        "benchmark": "tiny-99",
        "scenario": scenario,
        "mode": "performance",
        "config_ver": "default",
        "backend": "reference",
        "system": "reference-cpu",
        "fast": True,
        **parsed.record_fields(),
        "threshold": None,
        "verdict": {"outcome": "passed", "reasons": [], "checks": []},
        "log_dir": str(log_dir),
        "files": ["mlperf_log_detail.txt", "mlperf_log_summary.txt"],
        **extra,
    }


def _png(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    data = base64.b64decode(uri[len(prefix) :])
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    return data


def test_trace_gives_every_sample_with_loadgen_latencies(runs: dict[str, Path]) -> None:
    loadgen = parse_dir(runs["Server"]).loadgen
    times, latencies = read_trace(runs["Server"] / TRACE)
    assert len(latencies) == loadgen["result_query_count"]  # Server: one sample per query
    assert max(latencies) == pytest.approx(loadgen["result_max_latency_ns"] / 1e6)
    assert min(latencies) == pytest.approx(loadgen["result_min_latency_ns"] / 1e6)
    assert len(times) == len(latencies) and max(times) > min(times) >= 0
    offline_trace = runs["Offline"] / TRACE  # traced only for Server
    assert not offline_trace.exists() or offline_trace.stat().st_size == 0


def test_plots_per_scenario(runs: dict[str, Path]) -> None:
    server = _record(runs["Server"], "Server")
    points = percentile_points(server["loadgen"])
    assert [label for label, _ in points] == [
        "min",
        "p50",
        "p90",
        "p95",
        "p97",
        "p99",
        "p99.9",
        "max",
    ]
    assert [ms for _, ms in points] == sorted(ms for _, ms in points)
    plots = item_plots(server)
    assert [kind for kind, _ in plots] == ["percentiles", "over-time"]
    for _, uri in plots:
        _png(uri)
    offline = item_plots(_record(runs["Offline"], "Offline"))
    assert [kind for kind, _ in offline] == ["percentiles"]
    assert item_plots({**server, "mode": "accuracy"}) == []
    block = item_html(server, runs["Server"].parent)
    assert block.count('<img class="mlperf-plot') == 2
    assert 'href="Server/mlperf_log_trace.json"' in block


def test_summary_lists_settings_items_baseline_and_host() -> None:
    record = {
        "benchmark": "bert-99",
        "scenario": "Offline",
        "mode": "performance",
        "backend": "nvidia",
        "system": "H100-SXM-80GBx8",
        "result_validity": "VALID",
        "metric": {"name": "result_samples_per_second", "value": 60000.0, "unit": "samples/s"},
        "threshold": ">= 64515 samples/s (expected 71683.3 samples/s, tolerance 0.9)",
        "verdict": {"outcome": "failed", "reasons": [], "checks": []},
        "baseline": {
            "status": "regressed",
            "baseline_value": 70000.0,
            "unit": "samples/s",
            "delta_pct": -14.286,
        },
    }
    host = {
        "backend": "nvidia",
        "driver_version": "550.127.05",
        "cuda_version": "12.4",
        "gpus": [
            {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-1"},
            {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-2"},
        ],
        "requirements": [
            {"name": "fabric-manager", "ok": False, "found": "550.90.07 != 550.127.05"},
            {"name": "docker", "ok": True},
        ],
        "image": "pytest-mlperf/harness:abc",
    }
    rows = dict(host_rows(host))
    assert rows["driver_version"] == "550.127.05" and rows["image"] == "pytest-mlperf/harness:abc"
    assert rows["gpu 1"] == "name=NVIDIA H100 80GB HBM3, uuid=GPU-2"
    assert rows["check fabric-manager"] == "FAILED: 550.90.07 != 550.127.05"
    assert rows["check docker"] == "ok"
    html = summary_html(
        [record],
        host,
        "/r/run",
        settings={"fast": True, "baseline": "/b.json", "tolerance_pct": 5.0},
    )
    assert "1 items: 1 failed" in html
    assert "<td>baseline tolerance</td><td>5 %</td>" in html and "<td>/b.json</td>" in html
    assert '<td>70000.00</td><td>-14.3 % REGRESSED</td><td class="mlperf-fail">FAILED</td>' in html
    assert "tolerance 0.9)" in html and "check fabric-manager" in html
