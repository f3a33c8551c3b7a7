"""The README's main job N times: passes, and each item's run-to-run max/min; prints figures.

    python bench/repeatability.py                  # 10 runs, bert + 3d-unet, --mlperf-fast
    python bench/repeatability.py --hog 1          # the same with a CPU hog on one core
    python bench/repeatability.py --runs 3 --benchmarks bert

Goal (issue 15): 10/10 passes and a worst max/min <= 1.10 per item on the idle 2-core
machine. Each run is a fresh pytest session (fresh calibration and Server search) sharing
one model cache; the figures are the items' metrics from results.json. Also prints the
Server search's probes and seconds, and the machine load the runs recorded: figures from
a busy machine are said to be so. Before each run it times the bert INT8 model for
--floor-s seconds (and again after it) without LoadGen or pytest, and a numpy matmul for
as long: the max/min of those timings is the machine's own drift at the same moments, a
floor no item's max/min can go below; each item's figures divided by it show what the
plugin and LoadGen add.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from machine_noise import model_engine, trace  # noqa: E402


def _hog(stop: Any) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def one_run(
    work: Path, benchmarks: str, cache: Path, extra: list[str]
) -> tuple[int, float, list[dict[str, Any]]]:
    results = work / "results"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--mlperf-benchmarks={benchmarks}",
        "--mlperf-mode=performance",
        "--mlperf-fast",
        f"--mlperf-results-dir={results}",
        f"--mlperf-cache-dir={cache}",
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    found = sorted(results.glob("*/results.json"))
    items = json.loads(found[-1].read_text())["items"] if found else []
    return proc.returncode, took, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--benchmarks", default="bert,3d-unet")
    parser.add_argument("--hog", type=int, default=0, help="CPU hog processes during the runs")
    parser.add_argument(
        "--cache", type=Path, default=None, help="model cache (default: the user's)"
    )
    parser.add_argument(
        "--floor-s",
        type=float,
        default=3.0,
        help="seconds of raw model calls before each run, the machine's own noise (0: off)",
    )
    parser.add_argument("extra", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    cache = (
        args.cache
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-mlperf"
    )
    stop = multiprocessing.Event()
    hogs = [
        multiprocessing.Process(target=_hog, args=(stop,), daemon=True) for _ in range(args.hog)
    ]
    for h in hogs:
        h.start()
    load_before = os.getloadavg()
    by_item: dict[str, list[tuple[float, int]]] = {}  # (metric, run index)
    units: dict[str, str] = {}
    outcomes: dict[str, list[str]] = {}
    search_s: list[float] = []
    busy_runs = 0
    passes = 0
    times = []
    floor: list[float] = []  # the model's raw throughput around each run
    matmul: list[float] = []  # a numpy matmul's rate around each run (model-independent)
    engine = model_engine("bert-99", cache) if args.floor_s > 0 else None

    def probe() -> tuple[float, float]:
        assert engine is not None
        return statistics.fmean(trace(engine[0], engine[1], args.floor_s)), _matmul_rate(
            args.floor_s
        )

    try:
        for i in range(args.runs):
            before = probe() if engine is not None else None
            with tempfile.TemporaryDirectory() as tmp:
                rc, took, items = one_run(Path(tmp), args.benchmarks, cache, args.extra)
            if before is not None:
                after = probe()
                floor.append((before[0] + after[0]) / 2)
                matmul.append((before[1] + after[1]) / 2)
            times.append(took)
            passes += rc == 0
            busy = any((it.get("machine_load") or {}).get("busy") for it in items)
            busy_runs += busy
            print(
                f"run {i + 1}/{args.runs}: exit {rc}, {took:.1f} s, {len(items)} items"
                f"{', machine busy' if busy else ''}"
                + (f", machine floor {floor[-1]:.1f}/s" if floor else ""),
                flush=True,
            )
            for it in items:
                key = f"{it['benchmark']} {it['scenario']}"
                outcomes.setdefault(key, []).append(it["verdict"]["outcome"])
                if it["verdict"]["outcome"] != "passed":
                    print(f"    {key} {it['verdict']['outcome']}: {it['verdict'].get('reasons')}")
                if it["metric"]["value"] is not None:
                    by_item.setdefault(key, []).append((float(it["metric"]["value"]), i))
                    units[key] = str(it["metric"]["unit"])
                search = (it.get("calibration") or {}).get("search")
                if search:
                    search_s.append(float(search["seconds"]))
    finally:
        stop.set()
        for h in hogs:
            h.join(timeout=5)
    print()
    print(
        f"machine: {os.cpu_count()} CPUs, load average before {load_before[0]:.2f}, "
        f"{args.hog} hog process(es); {busy_runs} of {args.runs} runs recorded a busy machine"
    )
    print(f"passes: {passes}/{args.runs}; session time median {statistics.median(times):.1f} s")
    if floor:
        print(
            f"machine floor ({args.floor_s:g} s of raw bert INT8 batches before and after each "
            f"run, no LoadGen, no pytest): max/min {_spread(floor):.3f}; "
            f"numpy matmul: max/min {_spread(matmul):.3f}"
        )
    worst = worst_plugin = 0.0
    for key, pairs in sorted(by_item.items()):
        values = [v for v, _ in pairs]
        ratio = _spread(values)
        worst = max(worst, ratio)
        failed = sum(o != "passed" for o in outcomes[key])
        print(
            f"  {key:24s} runs {len(values):2d}  median {statistics.median(values):12.4g}  "
            f"max/min {ratio:.3f}  not passed {failed}"
        )
        print("    runs: " + " ".join(f"{v:.4g}" for v in values))
        if floor:
            # the machine's drift divided out: what the plugin and LoadGen add to it
            throughput = units[key] == "samples/s"
            scaled = [v / floor[i] if throughput else v * floor[i] for v, i in pairs]
            worst_plugin = max(worst_plugin, _spread(scaled))
            print(f"    relative to the machine floor: max/min {_spread(scaled):.3f}")
    print(f"worst max/min: {worst:.3f} (goal <= 1.10)")
    if floor:
        print(f"worst max/min relative to the machine floor: {worst_plugin:.3f}")
    if search_s:
        print(
            f"Server search: median {statistics.median(search_s):.1f} s per item "
            f"(min {min(search_s):.1f}, max {max(search_s):.1f})"
        )


def _spread(values: list[float]) -> float:
    return max(values) / min(values) if values and min(values) > 0 else float("inf")


def _matmul_rate(seconds: float) -> float:
    """512x512 float32 matmuls per second: a machine-speed probe that owes nothing to the
    model or ONNX Runtime."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ a
        done += 1
    return done / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
