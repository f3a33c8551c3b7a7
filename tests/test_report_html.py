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


def _fast_record(worker: str, node: str = "n1") -> dict[str, Any]:
    """An Offline item whose shortened run LoadGen called INVALID, accepted by --mlperf-fast."""
    validity = {
        "name": "validity",
        "value": "INVALID",
        "bound": "VALID (or shortened-run reasons only)",
        "passed": True,
        "detail": "accepted for a shortened run (--mlperf-fast): minimum duration not met",
        "skipped": False,
    }
    return {
        "benchmark": "bert-99",
        "scenario": "Offline",
        "mode": "performance",
        "backend": "reference",
        "system": "reference-cpu",
        "result_validity": "INVALID",
        "metric": {"name": "result_samples_per_second", "value": 250.0, "unit": "samples/s"},
        "threshold": None,
        "verdict": {"outcome": "passed", "reasons": [], "checks": [validity]},
        "worker": worker,
        "node": {"name": node, "worker": worker},
    }


def test_tables_name_the_node_and_say_why_an_invalid_run_passed() -> None:
    """Issue 26 point 10: `--dist each` printed identical rows; "INVALID ... PASSED" no why."""
    from pytest_mlperf.report.terminal import summary_table

    one = summary_table([_fast_record("main")])
    assert not one[0].startswith("node")  # one node, one worker: no node column
    assert one[0].split()[-1] == "note"
    assert one[2].split("PASSED")[1].strip() == (
        "INVALID accepted for a shortened run (--mlperf-fast): minimum duration not met"
    )
    workers = summary_table([_fast_record("gw0"), _fast_record("gw1")])
    assert workers[0].startswith("node") and workers[2].startswith("gw0 ")
    assert workers[3].startswith("gw1 ")
    fleet = summary_table([_fast_record("gw0", "a"), _fast_record("gw0", "b")])
    assert [line.split()[0] for line in fleet[2:]] == ["a", "b"]
    html = summary_html([_fast_record("gw0"), _fast_record("gw1")], {}, "/r/run")
    assert "<th>node</th><th>benchmark</th>" in html and "<td>gw1</td>" in html
    assert (
        '<td class="mlperf-reason">INVALID accepted for a shortened run (--mlperf-fast): '
        "minimum duration not met</td>"
    ) in html


def test_a_reused_passing_item_is_shown_as_passed_not_failed() -> None:
    """The verdict cell's colour follows the outcome: "PASSED (reused)" was classed as a
    failure because the class was looked up by the word shown."""
    record = {**_fast_record("main"), "provenance": {"status": "reused", "id": "abc"}}
    html = summary_html([record], {}, "/r/run")
    assert '<td class="mlperf-pass">PASSED (reused)</td>' in html
    failed = {**record, "verdict": {"outcome": "failed", "reasons": [], "checks": []}}
    assert '<td class="mlperf-fail">FAILED (reused)</td>' in summary_html([failed], {}, "/r/run")
