"""A LoadGen system under test around an ONNX Runtime session, for all four scenarios."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg
import numpy as np
from numpy.typing import NDArray

from pytest_mlperf import progress
from pytest_mlperf.backends.reference.dataset import SampleSet
from pytest_mlperf.errors import BackendError
from pytest_mlperf.results.loadgen import INTERRUPTED_NOTE

_SCENARIOS = {
    "Offline": lg.TestScenario.Offline,
    "Server": lg.TestScenario.Server,
    "SingleStream": lg.TestScenario.SingleStream,
    "MultiStream": lg.TestScenario.MultiStream,
}
_MODES = {"performance": lg.TestMode.PerformanceOnly, "accuracy": lg.TestMode.AccuracyOnly}
#: Bench-only (bench/ab_detect.py), never a user setting: the candidate side (B) of an
#: ``--mlperf-ab`` run gives up this many percent of its throughput (each model call is
#: followed by a sleep of its own duration x p / (100 - p)). Read only here.
BENCH_SLOWDOWN_ENV = "PYTEST_MLPERF_BENCH_SLOWDOWN_B"


def bench_slowdown(ab_side: str | None) -> float:
    """The fraction of throughput side ``ab_side`` gives up: ``$PYTEST_MLPERF_BENCH_SLOWDOWN_B``
    percent for the candidate (B), 0 for anything else."""
    text = os.environ.get(BENCH_SLOWDOWN_ENV, "").strip() if ab_side == "B" else ""
    if not text:
        return 0.0
    try:
        pct = float(text)
    except ValueError:
        pct = -1.0
    if not 0 <= pct < 100:
        raise BackendError(
            f"{BENCH_SLOWDOWN_ENV}: {text!r} is not a percentage from 0 to below 100"
        )
    return pct / 100.0


#: bench only (bench/history_aa.py): each model call takes this many times as long (a
#: sleep after it), a real slowdown for the regression gate to find; unset: none
SLOWDOWN_ENV = "MLPERF_BENCH_SLOWDOWN"


def _slowdown() -> float:
    try:
        return max(1.0, float(os.environ.get(SLOWDOWN_ENV, "1")))
    except ValueError:
        return 1.0


class Engine:
    """Runs a batch of sample indices through the model and returns response rows."""

    def __init__(
        self,
        session: Any,
        samples: SampleSet,
        respond: Callable[[list[NDArray[Any]]], NDArray[Any]],
    ) -> None:
        self.session = session
        self.samples = samples
        self.respond = respond
        self.slowdown = _slowdown()

    def infer(self, indices: NDArray[np.int64]) -> NDArray[Any]:
        """One model call for ``indices``; row ``j`` is the response to ``indices[j]``."""
        started = time.perf_counter()
        outputs = self.session.run(None, self.samples.batch(indices))
        if self.slowdown > 1.0:
            time.sleep((self.slowdown - 1.0) * (time.perf_counter() - started))
        return self.respond(outputs)


def _complete(ids: Sequence[int], rows: NDArray[Any]) -> None:
    """Hand responses to LoadGen; ``rows`` stays alive until LoadGen has copied them."""
    row_bytes = rows.strides[0] if rows.ndim else rows.nbytes
    base = rows.ctypes.data
    responses = [
        lg.QuerySampleResponse(qid, base + j * row_bytes, row_bytes) for j, qid in enumerate(ids)
    ]
    lg.QuerySamplesComplete(responses)


def _fail_queries(ids: Sequence[int]) -> None:
    lg.QuerySamplesComplete([lg.QuerySampleResponse(qid, 0, 0) for qid in ids])


class _Sut:
    """Synchronous for Offline/SingleStream/MultiStream; a worker thread batches Server."""

    def __init__(
        self, engine: Engine, batch_size: int, threaded: bool, slowdown: float = 0.0
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        #: bench-only: sleep this share of the throughput after each model call
        self._pause = slowdown / (1.0 - slowdown) if slowdown else 0.0
        self.error: BaseException | None = None
        #: set by a SIGINT/SIGTERM during the run: stop computing, answer at once
        self.interrupted = threading.Event()
        self._queue: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        if threaded:
            self._worker = threading.Thread(target=self._serve, name="mlperf-sut", daemon=True)
            self._worker.start()

    def _run_batch(self, ids: Sequence[int], indices: NDArray[np.int64]) -> None:
        if self.error is not None or self.interrupted.is_set():
            # LoadGen cannot be stopped mid-run: answer at once, paced so the remaining
            # queries until its minimum duration stay few
            time.sleep(0.001)
            _fail_queries(ids)
            return
        try:
            began = time.perf_counter()
            rows = self.engine.infer(indices)
            if self._pause:
                time.sleep((time.perf_counter() - began) * self._pause)
        except BaseException as exc:  # noqa: BLE001 - must never escape into LoadGen
            self.error = exc  # KeyboardInterrupt included: re-raised after the run
            _fail_queries(ids)
            return
        _complete(ids, rows)
        progress.samples_done(len(ids))

    def issue(self, query_samples: Sequence[Any]) -> None:
        """LoadGen's issue_queries callback."""
        if self._worker is not None:
            for q in query_samples:
                self._queue.put((q.id, q.index))
            progress.samples_done(0)  # the worker counts; lines go out from this thread
            return
        ids = [q.id for q in query_samples]
        indices = np.fromiter((q.index for q in query_samples), np.int64, len(ids))
        for start in range(0, len(ids), self.batch_size):
            stop = start + self.batch_size
            self._run_batch(ids[start:stop], indices[start:stop])

    def flush(self) -> None:
        """LoadGen's flush_queries callback: nothing is held back."""

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            ids = [qid for qid, _ in batch]
            self._run_batch(ids, np.fromiter((i for _, i in batch), np.int64, len(batch)))

    def stop(self) -> None:
        """End the worker thread."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=30)


def make_settings(
    mlperf_conf_model: str,
    scenario: str,
    mode: str,
    values: Mapping[str, float],
) -> tuple[Any, dict[str, Any]]:
    """TestSettings from LoadGen's built-in mlperf.conf rules, then ``values`` on top.

    ``values`` keys: expected_qps, target_qps, expected_latency_ns, latency_bound_ns,
    min_duration_ms, min_query_count, performance_sample_count, samples_per_query.
    Returns the settings and a record of what was set.
    """
    ts = lg.TestSettings()
    ts.FromConfig("", mlperf_conf_model, scenario, 0)
    ts.scenario = _SCENARIOS[scenario]
    ts.mode = _MODES[mode]
    applied: dict[str, Any] = {"mlperf_conf_model": mlperf_conf_model}
    mapping = {
        "expected_qps": ("offline_expected_qps", float),
        "target_qps": ("server_target_qps", float),
        "latency_bound_ns": ("server_target_latency_ns", int),
        "min_duration_ms": ("min_duration_ms", int),
        "min_query_count": ("min_query_count", int),
        "performance_sample_count": ("performance_sample_count_override", int),
    }
    for key, value in values.items():
        if key == "expected_latency_ns":
            attr = (
                f"{'single' if scenario == 'SingleStream' else 'multi'}_stream_expected_latency_ns"
            )
            setattr(ts, attr, int(value))
        elif key == "samples_per_query":
            ts.multi_stream_samples_per_query = int(value)
        elif key in mapping:
            attr, cast = mapping[key]
            setattr(ts, attr, cast(value))
        else:
            raise ValueError(f"unknown LoadGen setting {key!r}")
        applied[key] = value
    applied["min_duration_ms"] = ts.min_duration_ms
    applied["min_query_count"] = ts.min_query_count
    return ts, applied


def run_loadgen(
    engine: Engine,
    settings: Any,
    outdir: Path,
    scenario: str,
    batch_size: int,
    performance_count: int,
    audit_config: Path | None = None,
    slowdown: float = 0.0,
) -> float:
    """Run one LoadGen test into ``outdir``; returns its wall time in seconds.

    ``audit_config``: the only ``audit.config`` LoadGen may read (a compliance audit run
    writes it); None: one in ``outdir``, which is new and so has none. ``slowdown``:
    bench-only (:func:`bench_slowdown`).
    """
    sut_impl = _Sut(engine, batch_size, threaded=scenario == "Server", slowdown=slowdown)
    sut = lg.ConstructSUT(sut_impl.issue, sut_impl.flush)
    qsl = lg.ConstructQSL(engine.samples.count, performance_count, _noop, _noop)
    log = lg.LogSettings()
    log.log_output.outdir = str(outdir)
    log.log_output.copy_summary_to_stdout = False
    # Server: LoadGen's trace holds every sample's issue and completion time (the report's
    # latency-over-time plot); up to ~2 KB per sample, so it stays off for other scenarios
    # and for runs longer than a minute (a full 600 s bert Server run would write ~100 MB).
    log.enable_trace = scenario == "Server" and settings.min_duration_ms <= 60_000
    start = time.perf_counter()
    # No exception may cross LoadGen's C++ frames: during the run, SIGINT/SIGTERM only set a
    # flag (the SUT then answers at once); the interrupt is raised once LoadGen returns.
    previous = _defer_signals(sut_impl.interrupted)
    try:
        progress.loadgen_started(
            settings.min_duration_ms / 1000,
            settings.min_query_count,
            expected_seconds(settings, scenario),
        )
        lg.StartTestWithLogSettings(
            sut, qsl, settings, log, str(audit_config or outdir / "audit.config")
        )
    finally:
        elapsed = time.perf_counter() - start
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sut_impl.stop()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    if sut_impl.interrupted.is_set() or isinstance(sut_impl.error, KeyboardInterrupt):
        discard_interrupted_summary(outdir)
        raise KeyboardInterrupt("interrupted during the LoadGen run")
    if sut_impl.error is not None:
        raise BackendError(f"inference failed during the LoadGen run: {sut_impl.error!r}")
    return elapsed


def expected_seconds(settings: Any, scenario: str) -> float:
    """How long LoadGen will run: its minimum duration, or longer where the minimum query
    count at the target rate (Server QPS, the expected latency) takes longer."""
    duration = settings.min_duration_ms / 1000
    queries = settings.min_query_count
    if scenario == "Server" and settings.server_target_qps > 0:
        return float(max(duration, queries / settings.server_target_qps))
    latency_ns = {
        "SingleStream": settings.single_stream_expected_latency_ns,
        "MultiStream": settings.multi_stream_expected_latency_ns,
    }.get(scenario, 0)
    return float(max(duration, queries * latency_ns / 1e9))


#: What an interrupted run's summary is renamed to: its figures include the answers given
#: at once after the interrupt, so no parser or report may take them for a result.
INTERRUPTED_SUMMARY = "mlperf_log_summary.interrupted.txt"


def discard_interrupted_summary(outdir: Path) -> None:
    """Rename LoadGen's summary of an interrupted run and leave a note saying why."""
    summary = outdir / "mlperf_log_summary.txt"
    if summary.is_file():
        summary.replace(outdir / INTERRUPTED_SUMMARY)
    (outdir / INTERRUPTED_NOTE).write_text(
        "This LoadGen run was interrupted (Ctrl-C or SIGTERM). After the interrupt the SUT "
        "answered every query at once without computing it, so the run's figures are not a "
        f"result; its summary is kept as {INTERRUPTED_SUMMARY} for diagnosis only.\n",
        encoding="utf-8",
    )


def _defer_signals(flag: threading.Event) -> dict[int, Any]:
    """Replace the SIGINT/SIGTERM handlers: the first sets ``flag`` and says how long the
    wait is, a second exits (see :func:`pytest_mlperf.progress.on_interrupt`); returns the
    previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda _s, _f: progress.on_interrupt(flag.set))
    return previous


def _noop(_samples: Sequence[int]) -> None:
    """QSL load/unload: every sample is already resident in memory."""
