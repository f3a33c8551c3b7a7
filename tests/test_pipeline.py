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
