"""The item pipeline without pytest: a fake backend, a real verdict and record."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.backends.base import Progress, RunOutcome, RunRequest
from pytest_mlperf.catalog import CONFIG_VERS, Benchmark, Catalog, default_dirs, load_catalog
from pytest_mlperf.config import ItemSpec, OptionSpec, RunConfig, parse_run_config
from pytest_mlperf.errors import BackendError, BackendSkip, RunFailed
from pytest_mlperf.placement import Placement
from pytest_mlperf.results.store import RunStore
from pytest_mlperf.runner import ItemPipeline
from pytest_mlperf.thresholds import ThresholdTable, shipped_threshold_files
from tests.shared_data import PUBLISHED_LOGS, require_shared

GOLDEN = PUBLISHED_LOGS["nvidia-h200-3dunet-offline"]


class FakeBackend:
    """Copies golden LoadGen logs, or raises what it is told to."""

    name = "fake"

    def __init__(self, raises: Exception | None = None) -> None:
        self.raises = raises
        self.runs: list[RunRequest] = []

    def system_name(self) -> str:
        return "fake-system"

    def describe(self) -> dict[str, Any]:
        return {"backend": "fake"}

    def supported_config_vers(self) -> Sequence[str]:
        return CONFIG_VERS

    def host_record(self) -> Any:
        raise NotImplementedError

    def prepare(self, plan: Sequence[tuple[Benchmark, str]], progress: Progress) -> None:
        pass

    def run(self, request: RunRequest, progress: Progress) -> RunOutcome:
        self.runs.append(request)
        if self.raises is not None:
            raise self.raises
        for name in ("mlperf_log_detail.txt", "mlperf_log_summary.txt"):
            shutil.copy(require_shared(GOLDEN) / name, request.outdir / name)
        return RunOutcome(log_dir=request.outdir, settings={"device": "fake"}, run_seconds=1.5)

    def close(self) -> None:
        pass


def _pipeline(tmp_path: Path, backend: FakeBackend) -> tuple[ItemPipeline, Catalog, list[Any]]:
    catalog = load_catalog(default_dirs())
    values = {"results_dir": str(tmp_path / "results"), "cache_dir": str(tmp_path / "cache")}

    def get(spec: OptionSpec) -> str | None:
        return values.get(spec.name)

    run_config: RunConfig = parse_run_config(get, catalog, ["fake"], tmp_path)
    said: list[Any] = []
    pipeline = ItemPipeline(
        run_config=run_config,
        catalog=catalog,
        thresholds=ThresholdTable.load(shipped_threshold_files()),
        backend_name="fake",
        store=RunStore(tmp_path / "results", "run-1"),
        placement=Placement.from_workerinput(None, "none", ()),
        node={"name": "here"},
        backend=lambda: backend,
        system=lambda: "fake-system",
        result_ready=lambda record, nodeid: said.append(("ready", nodeid)),
        interrupted=lambda record, finished: said.append(("interrupted", record)),
    )
    return pipeline, catalog, said


def _spec(catalog: Catalog) -> ItemSpec:
    variant = catalog.variant("3d-unet-99")
    return ItemSpec(variant, "Offline", "performance", variant.config_vers[0])


def test_a_run_is_judged_recorded_and_announced(tmp_path: Path) -> None:
    backend = FakeBackend()
    pipeline, catalog, said = _pipeline(tmp_path, backend)
    spec = _spec(catalog)
    result = pipeline.run_item(spec, "mlperf::x")
    record = result.record
    assert record["verdict"]["outcome"] == "passed", record["verdict"]
    assert record["verdict"]["checks"][0]["name"] == "validity"
    assert record["system"] == "fake-system" and record["backend"] == "fake"
    written = json.loads((Path(record["item_dir"]) / "result.json").read_text())
    assert written == record
    assert said == [("ready", "mlperf::x")]


def test_a_backend_error_is_an_error_record(tmp_path: Path) -> None:
    backend = FakeBackend(BackendError("no GPU"))
    pipeline, catalog, _ = _pipeline(tmp_path, backend)
    spec = _spec(catalog)
    with pytest.raises(RunFailed) as info:
        pipeline.run_item(spec, "mlperf::x")
    verdict = info.value.result.record["verdict"]
    assert verdict["outcome"] == "error"
    assert verdict["reasons"] == ["BackendError: no GPU"]


def test_a_run_the_system_cannot_do_is_skipped_without_a_table(tmp_path: Path) -> None:
    backend = FakeBackend(BackendSkip("no config for this system"))
    pipeline, catalog, _ = _pipeline(tmp_path, backend)
    spec = _spec(catalog)
    verdict = pipeline.run_item(spec, "mlperf::x").record["verdict"]
    assert verdict == {
        "outcome": "skipped",
        "reasons": ["no config for this system"],
        "checks": [],
    }


def test_an_interrupted_item_is_filed_through_the_callback(tmp_path: Path) -> None:
    pipeline, catalog, said = _pipeline(tmp_path, FakeBackend())
    pipeline.record_interrupted(_spec(catalog), "mlperf::x")
    ((kind, record),) = said
    assert kind == "interrupted" and record["verdict"]["outcome"] == "interrupted"


SERVER_LOG = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/nvidia-harness-v4.1-logs/bert-99/Server/performance/mlperf_log_detail.txt"
)
_TOO_HIGH = {"result_validity": "INVALID", "early_stopping_met": False}
_TOO_HIGH["result_perf_constraints_met"] = False


def _server_log(outdir: Path, target_qps: float, changes: dict[str, Any]) -> None:
    """A published Server detail log with ``changes`` to its values and the run's target."""
    lines = []
    for line in SERVER_LOG.read_text().splitlines():
        prefix, _, body = line.partition("{")
        entry = json.loads("{" + body)
        if entry["key"] in changes:
            entry["value"] = changes[entry["key"]]
        if entry["key"] in ("effective_target_qps", "result_scheduled_samples_per_sec"):
            entry["value"] = target_qps
        if entry["key"] == "result_completed_samples_per_sec":
            entry["value"] = round(target_qps * 0.99, 2)
        lines.append(prefix + json.dumps(entry))
    (outdir / "mlperf_log_detail.txt").write_text("\n".join(lines) + "\n")


class SearchedServer(FakeBackend):
    """A Server SUT whose searched target (300/s) is too high for the timed run; any lower
    target passes. ``pinned``: the target came from the user (no calibration)."""

    def run(self, request: RunRequest, progress: Progress) -> RunOutcome:
        self.runs.append(request)
        target = request.overrides.get("target_qps", 300.0)
        _server_log(request.outdir, target, _TOO_HIGH if target >= 300 else {})
        calibration = None
        if "target_qps" not in request.overrides:
            search = {"target_qps": 300.0, "settings": {"step": 0.93}}
            calibration = {"targets": {"target_qps": 300.0}, "search": search}
        settings = {"device": "fake", "target_qps": target}
        return RunOutcome(request.outdir, settings, 1.0, calibration=calibration)


def _server_spec(catalog: Catalog) -> ItemSpec:
    variant = catalog.variant("bert-99")
    return ItemSpec(variant, "Server", "performance", variant.config_vers[0])


def test_a_searched_server_target_found_too_high_is_stepped_down_once(tmp_path: Path) -> None:
    """Issue 26 point 0: INVALID for latency/early stopping at the plugin's own target is
    the plugin's failure: rerun once lower, and say so in the record."""
    backend = SearchedServer()
    pipeline, catalog, _ = _pipeline(tmp_path, backend)
    record = pipeline.run_item(_server_spec(catalog), "mlperf::s").record
    assert [r.overrides.get("target_qps") for r in backend.runs] == [None, 259.47]
    assert record["verdict"]["outcome"] == "passed", record["verdict"]
    assert record["settings"]["target_qps"] == 259.47
    assert record["retarget"] == {
        "from_qps": 300.0,
        "to_qps": 259.47,  # two grid steps: 300 x 0.93^2
        "why": "early stopping criteria not met; latency constraint not met",
        "first_log_dir": str(backend.runs[0].outdir),
        "validity": "VALID",
    }
    assert record["calibration"]["search"]["target_qps"] == 300.0  # what was searched
    assert any("reran once at 259.47/s, VALID" in w for w in record["warnings"])
    assert Path(record["log_dir"]).name == "retarget"


def test_a_pinned_server_target_is_never_stepped_down(tmp_path: Path) -> None:
    backend = SearchedServer()
    pipeline, catalog, _ = _pipeline(tmp_path, backend)
    record = pipeline.run_item(_server_spec(catalog), "mlperf::s", {"target_qps": 300.0}).record
    assert len(backend.runs) == 1 and record.get("retarget") is None
    assert record["verdict"]["outcome"] == "failed"
    assert "early stopping criteria not met" in record["verdict"]["reasons"][0]
