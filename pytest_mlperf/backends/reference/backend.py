"""ReferenceBackend: builds and caches the models, calibrates, and runs LoadGen per item."""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlperf.backends.base import (
    AccuracyData,
    AccuracyProvider,
    ComplianceIndexMap,
    DeviceLocks,
    PrepareOrder,
    Progress,
    RunOutcome,
    RunRequest,
    audit_config_text,
)
from pytest_mlperf.backends.variants import CONFIG_VER, THREADS
from pytest_mlperf.catalog import Benchmark
from pytest_mlperf.errors import BackendError

if TYPE_CHECKING:
    from pytest_mlperf.host.probe import HostRecord

SYSTEM_NAME = "reference-cpu"
_DATA_SEED_OFFSET = 7
_CALIBRATION_SEED_OFFSET = 13
FP32, INT8 = "fp32", "int8"
#: the LoadGen target calibration sets per scenario; pinned (overrides) it is not calibrated
_TARGET_KEYS = {
    "Offline": "expected_qps",
    "Server": "target_qps",
    "SingleStream": "expected_latency_ns",
    "MultiStream": "expected_latency_ns",
}


class ReferenceBackend(PrepareOrder, DeviceLocks, AccuracyProvider, ComplianceIndexMap):
    """Real MLPerf LoadGen driving small ONNX Runtime models on the CPU."""

    name = "reference"
    #: Preparation is per process (ONNX Runtime sessions, calibration); only model builds
    #: are shared, under their own lock, so xdist workers prepare concurrently.
    serial_prepare = False
    #: ``--mlperf-ab``: a side may set ONNX Runtime's threads or the items' config_ver
    ab_keys = (THREADS, CONFIG_VER)

    def __init__(
        self,
        cache_dir: Path,
        calibrate: bool = True,
        threads: int | None = None,
        cpus: Sequence[int] | None = None,
    ) -> None:
        """``cpus``: this process's CPU set (``--mlperf-split`` under xdist); threads follow it."""
        self.cache_dir = cache_dir
        self.calibrate = calibrate
        self.cpus = list(cpus) if cpus else None
        self.threads = len(self.cpus) if self.cpus and not threads else threads
        #: what ``prepare`` actually did in this process (models built), for the shared log
        self.work_done: list[str] = []
        self._engines: dict[tuple[str, str], Any] = {}
        self._eval_engines: dict[tuple[str, str], Any] = {}
        self._evalsets: dict[str, Any] = {}
        self._calibration: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._cpu: dict[str, Any] | None = None

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

        facts = {
            "backend": self.name,
            "system_name": SYSTEM_NAME,
            "hostname": platform.node(),
            **self._cpu_facts(),
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "loadgen": getattr(mlperf_loadgen, "__version__", None) or _dist_version(),
            "threads": self.threads,
            "cpus": self.cpus,
        }
        # no empty rows in the reports: unknown facts are left out
        out = {k: v for k, v in facts.items() if v not in (None, "", [])}
        out["work_done"] = list(self.work_done)
        return out

    def _cpu_facts(self) -> dict[str, Any]:
        """CPU model, cores, threads and memory (lscpu, /proc), probed once per backend."""
        if self._cpu is None:
            record = self.host_record()
            model = record.cpu_model or _cpuinfo_model()
            cores = None
            if record.cpu_sockets and record.cpu_cores_per_socket:
                cores = record.cpu_sockets * record.cpu_cores_per_socket
            self._cpu = {
                "cpu": model or platform.processor() or platform.machine(),
                "cpu_arch": platform.machine(),
                "cpu_sockets": record.cpu_sockets,
                "cpu_cores": cores,
                "cpu_count": os.cpu_count(),
                "memory_gib": round(record.memory_kib / 1024**2, 1) if record.memory_kib else None,
            }
        return dict(self._cpu)

    def ab_identity(self) -> dict[str, Any]:
        """``--mlperf-ab``: what tells this backend's side apart (its threads)."""
        return {"threads": self.threads}

    def host_record(self) -> HostRecord:
        """CPU and memory facts (no GPUs are used by this backend)."""
        from pytest_mlperf.host.probe import HostRecord, probe_cpu

        record = HostRecord()
        probe_cpu(record)
        return record

    def lock_devices(self) -> list[str]:
        """The CPUs a run occupies (its split set, or every CPU of this process)."""
        return [f"cpu-{c}" for c in (self.cpus or sorted(os.sched_getaffinity(0)))]

    def prepare(self, plan: Sequence[tuple[Benchmark, str]], progress: Progress) -> None:
        """Build/load each model once (the precision of the benchmark's first config_ver).

        Calibration and the Server search are measurements: they run with the item's first
        run, under its device lock, never here beside another worker's measurement.
        """
        for bench, _scenario in plan:
            self._engine(bench, progress)

    def _model(self, bench: Benchmark, precision: str, progress: Progress) -> Path:
        """The model file for ``precision``; one process builds, concurrent ones wait and reuse."""
        from pytest_mlperf.backends.reference.cache import build_lock

        try:
            (self.cache_dir / "models").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(
                f"cannot build the {bench.name} model in the cache {self.cache_dir}: {exc}"
            ) from exc
        with build_lock(self.cache_dir / "models"):  # none on a read-only, complete cache
            return self._build_model(bench, precision, progress)

    def _build_model(self, bench: Benchmark, precision: str, progress: Progress) -> Path:
        """The FP32 model, or its cached INT8 quantization (under the build lock)."""
        from pytest_mlperf.backends.reference.models import ensure_model, model_key

        ref = _reference(bench)
        spec: Mapping[str, Any] = ref["model"]
        if not (self.cache_dir / "models" / f"{spec['kind']}-{model_key(spec)}.onnx").is_file():
            progress(f"{bench.name}: building the {spec['kind']} model (once, then cached) ...")
        try:
            path, built = ensure_model(spec, self.cache_dir / "models")
        except OSError as exc:
            raise BackendError(
                f"cannot build the {bench.name} model in the cache {self.cache_dir}: {exc}"
            ) from exc
        progress(f"{bench.name}: {'built' if built else 'reusing cached'} model {path}")
        if built:
            self.work_done.append(f"built model {path.name}")
        if precision == FP32:
            return path
        if precision != INT8:
            raise BackendError(
                f"{bench.source}: unknown precision {precision!r}; valid: fp32, int8"
            )
        from pytest_mlperf.backends.reference.quantize import ensure_quantized

        recipe: Mapping[str, Any] = ref.get("quantization") or {"method": "static"}
        from pytest_mlperf.backends.reference.quantize import quantized_path

        if not quantized_path(path, recipe).is_file():
            progress(f"{bench.name}: quantizing the model to INT8 (once, then cached) ...")
        try:
            qpath, built = ensure_quantized(path, recipe, lambda: _calibration_feeds(ref))
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(f"cannot quantize the {bench.name} model to INT8: {exc}") from exc
        progress(
            f"{bench.name}: {'quantized' if built else 'reusing cached'} INT8 model {qpath} "
            f"(onnxruntime.quantization, {recipe.get('method', 'static')})"
        )
        if built:
            self.work_done.append(f"quantized model {qpath.name}")
        return qpath

    def _engine(self, bench: Benchmark, progress: Progress, precision: str | None = None) -> Any:
        """The engine over the QSL samples; ``precision`` None: the first config_ver's."""
        precision = precision or precision_for(bench, bench.variants[0].config_vers[0])
        key = (bench.name, precision)
        if key in self._engines:
            return self._engines[key]
        import onnxruntime as ort

        from pytest_mlperf.backends.reference.dataset import RESPONSE_MAKERS, SAMPLE_MAKERS
        from pytest_mlperf.backends.reference.sut import Engine

        ref = _reference(bench)
        spec: Mapping[str, Any] = ref["model"]
        path = self._model(bench, precision, progress)
        options = ort.SessionOptions()
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)
        if self.threads:
            options.intra_op_num_threads = self.threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        kind = str(spec["kind"])
        samples = SAMPLE_MAKERS[kind](
            spec, int(ref["samples"]), int(spec["seed"]) + _DATA_SEED_OFFSET
        )
        engine = Engine(session, samples, RESPONSE_MAKERS[kind])
        self._engines[key] = engine
        return engine

    def _evalset(self, bench: Benchmark, progress: Progress) -> Any:
        """The benchmark's evaluation set, written from the FP32 model's outputs on first use."""
        if bench.name in self._evalsets:
            return self._evalsets[bench.name]
        from pytest_mlperf.backends.reference.evalset import ensure_evalset, evalset_path

        ref = _reference(bench)
        spec: Mapping[str, Any] = ref["model"]
        path = evalset_path(
            self.cache_dir, spec, int(ref["samples"]), int(spec["seed"]) + _DATA_SEED_OFFSET
        )
        fp32 = self._engine(bench, progress, FP32)
        from filelock import FileLock

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # one process writes it (an FP32 pass over every sample); concurrent ones reuse it
            with FileLock(str(path.parent / ".build.lock")):
                evalset, why = ensure_evalset(path, str(spec["kind"]), fp32)
        except OSError as exc:
            raise BackendError(f"cannot write the {bench.name} evaluation set: {exc}") from exc
        built = why is not None
        if built and why != "not built yet":
            progress(f"{bench.name}: cached evaluation set {path} {why}: discarded and rebuilt")
        progress(
            f"{bench.name}: {'wrote' if built else 'reusing cached'} evaluation set {path} "
            f"({len(evalset.selection)} of {fp32.samples.count} samples, FP32 ground truth)"
        )
        if built:
            self.work_done.append(f"wrote evaluation set {path.name}")
        self._evalsets[bench.name] = evalset
        return evalset

    def _eval_engine(self, bench: Benchmark, precision: str, progress: Progress) -> Any:
        """An engine whose samples are the evaluation set's, in its order (the accuracy QSL)."""
        key = (bench.name, precision)
        if key not in self._eval_engines:
            from pytest_mlperf.backends.reference.sut import Engine

            evalset = self._evalset(bench, progress)
            engine = self._engine(bench, progress, precision)
            samples = engine.samples.subset(evalset.selection)
            self._eval_engines[key] = Engine(engine.session, samples, engine.respond)
        return self._eval_engines[key]

    def accuracy_data(self, request: RunRequest, progress: Progress) -> AccuracyData:
        """The evaluation set and FP32 reference scores an accuracy item is judged against."""
        bench = request.benchmark
        ref = _reference(bench)
        evalset = self._evalset(bench, progress)
        accuracy = ref.get("accuracy")
        if not accuracy or "fp32_reference" not in accuracy:
            raise BackendError(
                f"{bench.source}: reference/accuracy/fp32_reference is missing: "
                "the reference model's FP32 score is needed to judge accuracy"
            )
        return AccuracyData(
            dataset=evalset.path,
            fp32_reference={k: float(v) for k, v in accuracy["fp32_reference"].items()},
            reference_source=(
                f"{bench.source.name} reference.accuracy: the FP32 reference model's score "
                "on its own evaluation set"
            ),
            precision=precision_for(bench, request.config_ver),
        )

    def compliance_index_map(self, request: RunRequest, progress: Progress) -> dict[int, int]:
        """Performance-QSL index → evaluation-set index, for scoring compliance samples."""
        evalset = self._evalset(request.benchmark, progress)
        return {perf: i for i, perf in enumerate(evalset.selection)}

    def _calibrated(
        self, bench: Benchmark, scenario: str, progress: Progress, precision: str | None
    ) -> dict[str, Any] | None:
        if not self.calibrate:
            return None
        precision = precision or precision_for(bench, bench.variants[0].config_vers[0])
        key = (bench.name, precision, scenario)
        if key not in self._calibration:
            from pytest_mlperf.backends.reference.calibrate import calibrate

            ref = _reference(bench)
            engine = self._engine(bench, progress, precision)
            progress(f"{bench.name} {scenario}: calibrating targets to this machine ...")
            search = None
            if scenario == "Server":
                search = self._server_search(bench, engine, progress)
            result = calibrate(
                engine,
                scenario,
                int(ref["batch_size"][scenario]),
                float(ref.get("server_load_factor", 0.5)),
                search,
            )
            how = "calibrated"
            if "search" in result:
                found = result["search"]
                how = (
                    f"searched ({len(found['probes'])} probes in {found['seconds']:.1f} s"
                    f"{'' if found['found'] else ', NONE met the latency margin'})"
                )
            progress(
                f"{bench.name} {scenario}: {how} {pairs(result['targets'])} "
                f"from {pairs(result['measured'])} ({precision})"
            )
            self._calibration[key] = result
        return self._calibration[key]

    def _server_search(
        self, bench: Benchmark, engine: Any, progress: Progress
    ) -> Callable[[float], dict[str, Any]] | None:
        """The Server target search over short LoadGen probes (None: turned off)."""
        from pytest_mlperf.backends.reference.calibrate import (
            SearchSettings,
            judge_probe,
            search_server_target,
        )
        from pytest_mlperf.backends.reference.sut import make_settings, run_loadgen
        from pytest_mlperf.results.loadgen import parse_dir

        ref = _reference(bench)
        settings = SearchSettings.from_data(ref.get("server_search"))
        bound = bench.latency_bound_ms("Server")
        if settings.probes == 0 or bound is None:
            return None
        bound_ns = bound * 1e6
        batch = int(ref["batch_size"]["Server"])

        def probe(qps: float) -> Any:
            values: dict[str, float] = {
                "target_qps": qps,
                "latency_bound_ns": bound_ns,
                "performance_sample_count": engine.samples.count,
                "min_duration_ms": settings.probe_ms,
                # at most the queries the probe's duration issues at this rate (a low rate
                # must not stretch a probe); LoadGen's max duration would log an error
                "min_query_count": max(
                    8, min(settings.probe_queries, int(qps * settings.probe_ms / 1000))
                ),
            }
            ts, _ = make_settings(bench.mlperf_conf_model, "Server", "performance", values)
            with tempfile.TemporaryDirectory(prefix="mlperf-probe-") as tmp:
                run_loadgen(engine, ts, Path(tmp), "Server", batch, engine.samples.count)
                parsed = parse_dir(Path(tmp))
            p99 = parsed.loadgen.get("result_99.00_percentile_latency_ns")
            done = parsed.loadgen.get("result_completed_samples_per_sec")
            outcome = judge_probe(
                qps,
                float(p99) if isinstance(p99, (int, float)) else None,
                float(done) if isinstance(done, (int, float)) else None,
                bound_ns,
                settings.latency_margin,
                len(parsed.errors),
            )
            progress(
                f"{bench.name} Server: probe at {qps:.1f}/s: "
                f"{'pass' if outcome.passed else 'fail'} ({outcome.why})"
            )
            return outcome

        load = float(ref.get("server_load_factor", 0.5))
        return lambda ceiling: search_server_target(probe, ceiling, settings, load)

    def run(self, request: RunRequest, progress: Progress) -> RunOutcome:
        """Run LoadGen for one item; its logs land in ``request.outdir``."""
        from pytest_mlperf.backends.reference.sut import (
            bench_slowdown,
            make_settings,
            run_loadgen,
        )

        bench, scenario = request.benchmark, request.scenario
        ref = _reference(bench)
        precision = precision_for(bench, request.config_ver)
        engine, calibration = self._engine_for(request, precision, progress)
        values = self._loadgen_values(request, engine.samples.count, calibration)
        settings, applied = make_settings(bench.mlperf_conf_model, scenario, request.mode, values)
        applied["precision"] = precision
        progress(
            f"{request.variant.name} {scenario} {request.mode}: LoadGen running ({pairs(applied)})"
        )
        audit = _audit_file(request, applied)
        slowdown = bench_slowdown(request.ab_side)
        if slowdown:
            applied["bench_slowdown_pct"] = round(slowdown * 100, 3)
        seconds = run_loadgen(
            engine,
            settings,
            request.outdir,
            scenario,
            int(ref["batch_size"][scenario]),
            engine.samples.count,
            audit,
            slowdown=slowdown,
        )
        progress(
            f"{request.variant.name} {scenario} {request.mode}: LoadGen done in {seconds:.1f} s"
        )
        applied["device"] = f"cpus {','.join(map(str, self.cpus))}" if self.cpus else "all cpus"
        return RunOutcome(
            log_dir=request.outdir, settings=applied, run_seconds=seconds, calibration=calibration
        )

    def _engine_for(
        self, request: RunRequest, precision: str, progress: Progress
    ) -> tuple[Any, dict[str, Any] | None]:
        """The item's engine and calibration: in accuracy mode every sample of the evaluation
        set once, with a calibration reused, never waited for; a pinned target skips it."""
        bench, scenario = request.benchmark, request.scenario
        if request.mode == "accuracy" and request.compliance is None:
            engine = self._eval_engine(bench, precision, progress)
            return engine, self._calibration.get((bench.name, precision, scenario))
        engine = self._engine(bench, progress, precision)
        pinned = _TARGET_KEYS[scenario] in request.overrides
        calibration = None if pinned else self._calibrated(bench, scenario, progress, precision)
        return engine, calibration

    @staticmethod
    def _loadgen_values(
        request: RunRequest, samples: int, calibration: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The item's LoadGen settings: the data's targets, calibrated ones over them, the
        latency bound, the sample counts, the shortened run's, then the overrides."""
        bench, scenario = request.benchmark, request.scenario
        ref = _reference(bench)
        values = _data_targets(ref["targets"][scenario])
        if calibration is not None:
            values.update(calibration["targets"])
        bound = bench.latency_bound_ms(scenario)
        if bound is not None:
            values["latency_bound_ns"] = int(bound * 1e6)
        values["performance_sample_count"] = samples
        if scenario == "MultiStream":
            values["samples_per_query"] = int(ref["batch_size"]["MultiStream"])
        if request.fast:
            values.update(ref["fast"][scenario])
        values.update(request.overrides)
        return values

    def close(self) -> None:
        """Drop the ONNX Runtime sessions."""
        self._engines.clear()
        self._eval_engines.clear()


def pairs(values: Mapping[str, Any]) -> str:
    """``key=value, ...`` for progress lines (never a Python dict)."""
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )


def precision_for(bench: Benchmark, config_ver: str) -> str:
    """The model precision a config_ver runs (``reference.precision``); FP32 when unset."""
    table: Mapping[str, str] = _reference(bench).get("precision") or {}
    return str(table.get(config_ver, FP32))


def _calibration_feeds(ref: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Inputs for static quantization: their own seed, never the evaluation samples."""
    from pytest_mlperf.backends.reference.dataset import SAMPLE_MAKERS

    spec: Mapping[str, Any] = ref["model"]
    count = int((ref.get("quantization") or {}).get("calibration_samples", 8))
    samples = SAMPLE_MAKERS[str(spec["kind"])](
        spec, count, int(spec["seed"]) + _CALIBRATION_SEED_OFFSET
    )
    return [{name: arr[i : i + 1] for name, arr in samples.inputs.items()} for i in range(count)]


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


def _cpuinfo_model() -> str | None:
    """``model name`` from /proc/cpuinfo, where lscpu is missing."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip() or None
    except OSError:
        return None
    return None


def _dist_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlcommons-loadgen")
    except PackageNotFoundError:
        return None


def _audit_file(request: RunRequest, applied: dict[str, Any]) -> Path:
    """Where LoadGen reads audit.config (by default the working directory): written for a
    compliance audit run only; any stray file there is refused, never read."""
    audit = request.outdir / "audit.config"
    if request.audit is not None:
        audit.write_text(audit_config_text(request.audit), encoding="utf-8")
        applied["audit_config"] = dict(request.audit)
    elif audit.exists():
        raise BackendError(f"{audit} exists before the run: LoadGen would read it")
    return audit
