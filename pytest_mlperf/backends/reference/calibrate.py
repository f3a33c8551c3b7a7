"""Tune LoadGen targets to this machine by timing the model directly (reported, never hidden)."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from pytest_mlperf.backends.reference.sut import Engine

_BUDGET_S = 0.4


def _time_batches(engine: Engine, batch: int, budget_s: float) -> list[float]:
    """Seconds per call of ``batch`` samples, after one warm-up call, within ``budget_s``."""
    indices = np.arange(batch, dtype=np.int64) % engine.samples.count
    engine.infer(indices)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 200):
        start = time.perf_counter()
        engine.infer(indices)
        times.append(time.perf_counter() - start)
    return times


def calibrate(engine: Engine, scenario: str, batch_size: int, server_load: float) -> dict[str, Any]:
    """Measured figures and the LoadGen targets derived from them for ``scenario``."""
    times = _time_batches(engine, batch_size, _BUDGET_S)
    per_call = statistics.median(times)
    throughput = batch_size / per_call
    measured: dict[str, Any] = {
        "batch_size": batch_size,
        "calls": len(times),
        "median_call_ms": round(per_call * 1e3, 3),
        "samples_per_second": round(throughput, 2),
    }
    targets: dict[str, float]
    if scenario == "Offline":
        targets = {"expected_qps": round(throughput, 2)}
    elif scenario == "Server":
        targets = {"target_qps": round(throughput * server_load, 2)}
    else:
        p90 = float(np.percentile(times, 90))
        targets = {"expected_latency_ns": int(p90 * 1e9)}
    return {"measured": measured, "targets": targets}
