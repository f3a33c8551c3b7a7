"""ReferenceBackend: builds and caches the models, calibrates, and runs LoadGen per item."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_mlperf.backends.base import Progress, RunOutcome, RunRequest
from pytest_mlperf.catalog import Benchmark
from pytest_mlperf.errors import BackendError

SYSTEM_NAME = "reference-cpu"
_DATA_SEED_OFFSET = 7


class ReferenceBackend:
    """Real MLPerf LoadGen driving small ONNX Runtime models on the CPU."""

    name = "reference"

    def __init__(self, cache_dir: Path, calibrate: bool = True, threads: int | None = None) -> None:
        self.cache_dir = cache_dir
        self.calibrate = calibrate
        self.threads = threads
        self._engines: dict[str, Any] = {}
        self._calibration: dict[tuple[str, str], dict[str, Any]] = {}

    def system_name(self) -> str:
        """Thresholds for this backend are filed under ``reference-cpu``."""
        return SYSTEM_NAME

    def supported_config_vers(self) -> Sequence[str]:
        """No Triton here; high_accuracy selects the 99.9 % variants."""
        return ("default", "high_accuracy")

    def describe(self) -> dict[str, Any]:
        """CPU and software facts for the host record."""
        import mlperf_loadgen
        import onnxruntime

        return {
            "backend": self.name,
            "system_name": SYSTEM_NAME,
            "hostname": platform.node(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "loadgen": getattr(mlperf_loadgen, "__version__", None) or _dist_version(),
            "threads": self.threads,
        }

    def prepare(self, plan: Sequence[tuple[Benchmark, str]], progress: Progress) -> None:
        """Build/load each model once and calibrate each scenario once."""
        for bench, scenario in plan:
            self._calibrated(bench, scenario, progress)

    def _engine(self, bench: Benchmark, progress: Progress) -> Any:
        if bench.name in self._engines:
            return self._engines[bench.name]
        import onnxruntime as ort

        from pytest_mlperf.backends.reference.dataset import RESPONSE_MAKERS, SAMPLE_MAKERS
        from pytest_mlperf.backends.reference.models import ensure_model
        from pytest_mlperf.backends.reference.sut import Engine

        ref = _reference(bench)
        spec: Mapping[str, Any] = ref["model"]
        try:
            path, built = ensure_model(spec, self.cache_dir / "models")
        except OSError as exc:
            raise BackendError(
                f"cannot build the {bench.name} model in the cache {self.cache_dir}: {exc}"
            ) from exc
        progress(f"{bench.name}: {'built' if built else 'reusing cached'} model {path}")
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        kind = str(spec["kind"])
        samples = SAMPLE_MAKERS[kind](
            spec, int(ref["samples"]), int(spec["seed"]) + _DATA_SEED_OFFSET
        )
        engine = Engine(session, samples, RESPONSE_MAKERS[kind])
        self._engines[bench.name] = engine
        return engine

    def _calibrated(
        self, bench: Benchmark, scenario: str, progress: Progress
    ) -> dict[str, Any] | None:
        if not self.calibrate:
            return None
        key = (bench.name, scenario)
        if key not in self._calibration:
            from pytest_mlperf.backends.reference.calibrate import calibrate

            ref = _reference(bench)
            result = calibrate(
                self._engine(bench, progress),
                scenario,
                int(ref["batch_size"][scenario]),
                float(ref.get("server_load_factor", 0.5)),
            )
            progress(
                f"{bench.name} {scenario}: calibrated {result['targets']} from {result['measured']}"
            )
            self._calibration[key] = result
        return self._calibration[key]

    def run(self, request: RunRequest, progress: Progress) -> RunOutcome:
        """Run LoadGen for one item; its logs land in ``request.outdir``."""
        from pytest_mlperf.backends.reference.sut import make_settings, run_loadgen

        bench, scenario = request.benchmark, request.scenario
        ref = _reference(bench)
        engine = self._engine(bench, progress)
        calibration = self._calibrated(bench, scenario, progress)
        values = _data_targets(ref["targets"][scenario])
        if calibration is not None:
            values.update(calibration["targets"])
        bound = bench.latency_bound_ms(scenario)
        if bound is not None:
            values["latency_bound_ns"] = int(bound * 1e6)
        values["performance_sample_count"] = engine.samples.count
        if scenario == "MultiStream":
            values["samples_per_query"] = int(ref["batch_size"]["MultiStream"])
        if request.fast:
            values.update(ref["fast"][scenario])
        values.update(request.overrides)
        settings, applied = make_settings(bench.mlperf_conf_model, scenario, request.mode, values)
        progress(f"{request.variant.name} {scenario} {request.mode}: LoadGen running ({applied})")
        seconds = run_loadgen(
            engine,
            settings,
            request.outdir,
            scenario,
            int(ref["batch_size"][scenario]),
            engine.samples.count,
        )
        progress(
            f"{request.variant.name} {scenario} {request.mode}: LoadGen done in {seconds:.1f} s"
        )
        return RunOutcome(
            log_dir=request.outdir, settings=applied, run_seconds=seconds, calibration=calibration
        )

    def close(self) -> None:
        """Drop the ONNX Runtime sessions."""
        self._engines.clear()


def _reference(bench: Benchmark) -> Mapping[str, Any]:
    if bench.reference is None:
        raise BackendError(f"benchmark {bench.name!r} ({bench.source}) has no 'reference' section")
    return bench.reference


def _data_targets(targets: Mapping[str, float]) -> dict[str, float]:
    values: dict[str, float] = {}
    for key, value in targets.items():
        if key == "expected_latency_ms":
            values["expected_latency_ns"] = float(value) * 1e6
        else:
            values[key] = float(value)
    return values


def _dist_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlcommons-loadgen")
    except PackageNotFoundError:
        return None
