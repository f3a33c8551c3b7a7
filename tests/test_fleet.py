"""The fleet view (median, deviation, max(k×MAD, tolerance)), host differences, log transfer
and ``pytest-mlperf merge`` of per-node results.json files (the Kubernetes path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf import cli
from pytest_mlperf.fleet import fleet_table, fleet_view, host_differences, merge_results
from pytest_mlperf.transfer import pack_item, relocate_record, unpack_item
from tests.conftest import RunMlperf, load_results


def _record(
    node: str, value: float, unit: str = "samples/s", scenario: str = "Offline"
) -> dict[str, Any]:
    return {
        "nodeid": f"mlperf::bert-99[{scenario}-performance]",
        "benchmark": "bert-99",
        "scenario": scenario,
        "mode": "performance",
        "config_ver": "default",
        "backend": "nvidia",
        "system": "H100_SXM_80GBx8",
        "result_validity": "VALID",
        "metric": {"name": "result_samples_per_second", "value": value, "unit": unit},
        "verdict": {"outcome": "passed", "reasons": [], "checks": []},
        "node": {"name": node},
    }


def test_slow_node_is_the_outlier_with_its_numbers() -> None:
    records = [_record("a", 1000), _record("b", 1010), _record("c", 990), _record("d", 600)]
    fleet = fleet_view(records, k=3, tolerance_pct=5)
    (item,) = fleet["items"]
    assert item["median"] == 995 and item["better"] == "higher"
    devs = {n["node"]: round(n["deviation_pct"], 2) for n in item["nodes"]}
    assert devs == {"a": 0.5, "b": 1.51, "c": -0.5, "d": -39.7}
    assert item["mad_pct"] == pytest.approx(1.005, abs=1e-3)
    assert item["bound_pct"] == 5  # 3 × MAD (3 %) is below the tolerance: the tolerance wins
    assert fleet["outliers"] == [
        {
            "node": "d",
            "item": "bert-99[Offline-performance]",
            "reason": "fleet outlier: node d slower than the fleet on bert-99[Offline-performance]: "
            "result_samples_per_second 600.00 samples/s is -39.7 % off the median 995.00 "
            "samples/s of 4 nodes (bound ±5.0 % = max(3 × MAD 1.0 %, tolerance 5 %))",
        }
    ]


def test_bound_grows_with_the_spread_and_latency_is_lower_is_better() -> None:
    # a noisy fleet: 3 × MAD is the bound, and a node only 30 % off is within it
    noisy = [_record(n, v, "ns", "Server") for n, v in (("a", 1e6), ("b", 1.15e6), ("c", 1.3e6))]
    (item,) = fleet_view(noisy, k=3, tolerance_pct=5)["items"]
    assert item["better"] == "lower" and round(item["bound_pct"], 2) == 39.13
    assert item["outliers"] == []
    # a node twice as slow (latency up) is flagged as slower; one much faster as faster
    slow = [*noisy[:2], _record("c", 4e6, "ns", "Server")]
    assert "node c slower" in fleet_view(slow, k=3, tolerance_pct=5)["outliers"][0]["reason"]
    fast = [*noisy[:2], _record("c", 1e5, "ns", "Server")]
    assert "node c faster" in fleet_view(fast, k=3, tolerance_pct=5)["outliers"][0]["reason"]


def test_two_nodes_name_no_outlier_and_missing_metrics_are_shown() -> None:
    fleet = fleet_view([_record("a", 1000), _record("b", 100)])
    (item,) = fleet["items"]
    assert fleet["outliers"] == [] and "at least 3 name an outlier" in item["note"]
    broken = _record("c", 0)
    broken["metric"]["value"] = None
    broken["verdict"]["outcome"] = "error"
    fleet = fleet_view([_record("a", 1000), _record("b", 1000), broken])
    rows = {n["node"]: n for n in fleet["items"][0]["nodes"]}
    assert rows["c"]["value"] is None and rows["c"]["reason"] == "no metric (error)"
    text = "\n".join(fleet_table(fleet))
    assert "no metric (error)" in text and "at least 3" in text


def test_differing_host_facts_are_flagged() -> None:
    gpu = {"name": "NVIDIA H100 80GB HBM3", "mig_mode": "Disabled"}
    base = {"driver_version": "550.54.15", "cuda_version": "12.4", "gpus": [gpu] * 8}
    hosts = {
        "n1": base,
        "n2": {**base, "fabric_manager_version": "550.54.15"},
        "n3": {**base, "driver_version": "535.104.05", "gpus": [gpu] * 7},
    }
    diffs = {d["fact"]: d["values"] for d in host_differences(hosts)}
    assert set(diffs) == {"gpu_count", "driver_version", "fabric_manager_version"}
    assert diffs["gpu_count"] == {"n1": 8, "n2": 8, "n3": 7}
    assert diffs["fabric_manager_version"]["n1"] is None  # not probed there: differs too
    assert host_differences({"n1": base, "n2": dict(base)}) == []


def test_transfer_is_bounded_and_cannot_escape(tmp_path: Path) -> None:
    root = tmp_path / "node" / "run"
    item = root / "bert-99" / "Offline" / "performance"
    item.mkdir(parents=True)
    (item / "mlperf_log_summary.txt").write_text("Result is : VALID\n")
    (item / "mlperf_log_accuracy.json").write_bytes(b"x" * 5000)
    payload = pack_item(root, item, max_file=4096)
    assert [f["path"] for f in payload["files"]] == [
        "bert-99/Offline/performance/mlperf_log_summary.txt"
    ]
    assert payload["left"] == [
        {
            "path": "bert-99/Offline/performance/mlperf_log_accuracy.json",
            "bytes": 5000,
            "why": "over 4096 bytes",
        }
    ]
    dest = tmp_path / "controller" / "nodes" / "n1"
    unpack_item(dest, payload)
    assert (
        dest / "bert-99/Offline/performance/mlperf_log_summary.txt"
    ).read_text() == "Result is : VALID\n"
    record: dict[str, Any] = {"log_dir": str(item), "item_dir": str(item)}
    relocate_record(record, str(root), dest, payload)
    assert record["log_dir"] == str(dest / "bert-99/Offline/performance")
    assert record["transfer"]["left"][0]["why"] == "over 4096 bytes"
    relocate_record(record, str(root), dest, payload)  # again (worker, then controller)
    assert record["transfer"]["node_paths"]["item_dir"] == str(item)
    assert record["log_dir"] == str(dest / "bert-99/Offline/performance")
    hostile = {"files": [{"path": "../../../etc/evil", "data": "eA=="}]}
    (written,) = unpack_item(dest, hostile)
    assert written == dest / "etc" / "evil"


def _results(tmp_path: Path, name: str, node: str | None, value: float) -> Path:
    record = _record(node or "?", value)
    if node is None:
        del record["node"]  # an older file: the node comes from its host name
    data = {
        "schema_version": 1,
        "run_id": f"run-{name}",
        "started": "2026-12-01T10:00:00+00:00",
        "finished": "2026-12-01T10:05:00+00:00",
        "backend": "nvidia",
        "system": "H100_SXM_80GBx8",
        "host": {
            "hostname": f"pod-{name}",
            "driver_version": "535.104.05" if name == "c" else "550.54.15",
        },
        "settings": {"fast": False},
        "items": [record],
    }
    path = tmp_path / name / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path


def test_merge_per_node_files_into_one_fleet_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [
        _results(tmp_path, "a", "gpu-a", 1000),
        _results(tmp_path, "b", "gpu-b", 1005),
        _results(tmp_path, "c", None, 500),
    ]
    out = tmp_path / "fleet"
    html = tmp_path / "fleet.html"
    code = cli.main(["merge", *map(str, files), "-o", str(out), "--html", str(html)])
    printed = capsys.readouterr().out
    assert code == 1  # a node is off: the merge says so in its exit status
    merged = json.loads((out / "results.json").read_text())
    assert [i["node"]["name"] for i in merged["items"]] == ["gpu-a", "gpu-b", "pod-c"]
    assert sorted(merged["nodes"]) == ["gpu-a", "gpu-b", "pod-c"]
    assert [o["node"] for o in merged["fleet"]["outliers"]] == ["pod-c"]
    assert merged["fleet"]["host_differences"][0]["fact"] == "driver_version"
    assert merged["settings"]["merged_from"] == [str(f) for f in files]
    assert (
        "fleet outlier: node pod-c slower" in printed and "merged 3 file(s), 3 records" in printed
    )
    page = html.read_text()
    assert 'id="mlperf-fleet"' in page and "mlperf-plot-fleet" in page
    # the merged file is a results.json like any other: the fleet table and compare read it
    assert cli.main(["fleet", str(out)]) == 1
    assert cli.main(["compare", f"{out}@gpu-a", f"{out}@pod-c"]) == 0
    assert "worse" in capsys.readouterr().out


def test_merge_bad_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _results(tmp_path, "a", "gpu-a", 1000)
    assert cli.main(["merge", str(a), str(a), "-o", str(tmp_path / "o.json")]) == 2
    assert "node 'gpu-a' is in both" in capsys.readouterr().err
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    assert cli.main(["merge", str(junk), "-o", str(tmp_path / "o.json")]) == 2
    assert "is not a pytest-mlperf results.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["merge", str(a), "-o", str(tmp_path / "o.json"), "--mad-k", "-2"])
    assert exc.value.code == 2
    assert "'-2' is not a number > 0" in capsys.readouterr().err


def test_merge_keeps_the_first_file_settings() -> None:
    files = [("x", {"schema_version": 1, "run_id": "r", "items": [_record("n", 1.0)]})]
    merged = merge_results(files)
    assert merged["finished"] is None and merged["nodes"] == {"n": {}}


def test_single_node_records_carry_their_node(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without xdist (one pod of a Kubernetes Job): the node tag comes from MLPERF_NODE_NAME,
    and the merge of such files names the nodes."""
    monkeypatch.setenv("MLPERF_NODE_NAME", "pod-7")
    result = run_mlperf("--mlperf-benchmarks=tiny", "--mlperf-scenarios=Offline", "--mlperf-fast")
    result.assert_outcomes(passed=1)
    data = load_results(pytester.path)
    assert data["items"][0]["node"]["name"] == "pod-7"
    assert "fleet" not in data  # one node, no fleet options: no fleet view
    path = next((pytester.path / "mlperf-results").glob("*/results.json"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_mlperf.cli",
            "merge",
            str(path),
            "-o",
            str(pytester.path / "m"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "pod-7" in done.stdout and "at least 3 name an outlier" in done.stdout
