"""The machine's own run-to-run noise, without LoadGen or the plugin; prints figures.

    python bench/machine_noise.py                     # 10 min of bert INT8 batches, 2 CPUs
    python bench/machine_noise.py --minutes 3 --benchmark 3d-unet-99

Runs the reference backend's model back to back (the Offline batch size, ONNX Runtime
as the plugin sets it up) for ``--minutes`` and records the throughput of every second.
It then prints, for windows of 1, 3, 10 and 30 s, the max/min of the window throughputs
over the whole span: the spread any measurement of that length taken at some moment of
that span inherits from the machine. A plugin figure can be no steadier than this floor;
``bench/repeatability.py``'s max/min is to be read against it. Also prints the steal
share and the others' CPU share (/proc/stat), which say whether the drift was visible.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_mlperf.backends.base import no_progress  # noqa: E402
from pytest_mlperf.backends.reference import ReferenceBackend  # noqa: E402
from pytest_mlperf.catalog import default_dirs, load_catalog  # noqa: E402


def _cpu_counters() -> tuple[int, int]:
    """(total jiffies, steal jiffies) of all CPUs."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def model_engine(benchmark: str, cache: Path) -> tuple[Any, int]:
    """The reference backend's engine for ``benchmark`` (its first config_ver's precision)
    and its Offline batch size, as the plugin sets them up."""
    bench = load_catalog(default_dirs()).benchmark(benchmark)
    backend = ReferenceBackend(cache, calibrate=False)
    backend.prepare([(bench, "Offline")], no_progress)
    return backend._engine(bench, no_progress), int(bench.reference["batch_size"]["Offline"])  # type: ignore[index]


def trace(engine: object, batch: int, seconds: float) -> list[float]:
    """Samples per second of every whole second of back-to-back batched calls."""
    count = engine.samples.count  # type: ignore[attr-defined]
    idx = np.arange(batch, dtype=np.int64) % count
    engine.infer(idx)  # type: ignore[attr-defined]
    per_second: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start, done = time.perf_counter(), 0
        while time.perf_counter() - start < 1.0:
            engine.infer(idx)  # type: ignore[attr-defined]
            done += batch
        per_second.append(done / (time.perf_counter() - start))
    return per_second


def window_spread(per_second: list[float], width: int) -> float:
    """max/min over the span of the mean throughput of consecutive ``width``-second windows."""
    means = [
        statistics.fmean(per_second[i : i + width])
        for i in range(0, len(per_second) - width + 1, width)
    ]
    return max(means) / min(means) if len(means) > 1 and min(means) > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--benchmark", default="bert-99")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-mlperf",
    )
    args = parser.parse_args()
    engine, batch = model_engine(args.benchmark, args.cache)
    load = os.getloadavg()
    total0, steal0 = _cpu_counters()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    per_second = trace(engine, batch, args.minutes * 60)
    wall = time.perf_counter() - wall0
    total1, steal1 = _cpu_counters()
    cpus = os.cpu_count() or 1
    own = time.process_time() - cpu0
    print(
        f"{args.benchmark} batch {batch}, {len(per_second)} s traced on {cpus} CPUs "
        f"(load average before {load[0]:.2f}); "
        f"steal {100 * (steal1 - steal0) / max(1, total1 - total0):.1f} %, "
        f"this process {100 * own / (wall * cpus):.0f} % of the CPUs"
    )
    print(
        f"throughput per second: median {statistics.median(per_second):.1f}, "
        f"min {min(per_second):.1f}, max {max(per_second):.1f}"
    )
    for width in (1, 3, 10, 30):
        print(
            f"  {width:2d}-s windows over {len(per_second)} s: "
            f"max/min {window_spread(per_second, width):.3f}"
        )


if __name__ == "__main__":
    main()
