"""Benchmark the reference backend and the plugin; prints ratios, asserts nothing.

    python bench/reference_overhead.py [--rounds 3] [--duration-ms 4000]

1. Offline throughput through LoadGen vs raw ONNX Runtime batched throughput of the same
   model, measured in one process, alternating, median of ``--rounds`` pairs (this VM's
   speed drifts between processes, so only paired figures mean anything).
2. Plugin overhead per item: item wall time minus LoadGen run time, from a real pytest run
   of the tiny benchmark (model build and calibration happen once per session, in setup).
3. Collection time for 1,000 generated items (--collect-only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_mlperf.backends.base import RunRequest, no_progress  # noqa: E402
from pytest_mlperf.backends.reference import ReferenceBackend  # noqa: E402
from pytest_mlperf.catalog import default_dirs, load_catalog  # noqa: E402
from pytest_mlperf.results.loadgen import parse_dir  # noqa: E402


def raw_throughput(engine, batch: int, seconds: float) -> float:
    """Samples/s of back-to-back batched inference over the QSL."""
    count = engine.samples.count
    start = time.perf_counter()
    done = 0
    i = 0
    while time.perf_counter() - start < seconds:
        idx = (np.arange(batch, dtype=np.int64) + i) % count
        engine.infer(idx)
        done += batch
        i += batch
    return done / (time.perf_counter() - start)


def offline_ratio(rounds: int, duration_ms: int, cache: Path) -> None:
    catalog = load_catalog(default_dirs())
    bench = catalog.benchmark("bert-99")
    backend = ReferenceBackend(cache, calibrate=True)
    backend.prepare([(bench, "Offline")], no_progress)
    engine = backend._engine(bench, no_progress)
    batch = int(bench.reference["batch_size"]["Offline"])  # type: ignore[index]
    ratios = []
    for r in range(rounds):
        raw = raw_throughput(engine, batch, duration_ms / 1000)
        with tempfile.TemporaryDirectory() as out:
            request = RunRequest(
                bench,
                catalog.variant("bert-99"),
                "Offline",
                "performance",
                "default",
                True,
                Path(out),
                {"min_duration_ms": duration_ms},
            )
            backend.run(request, no_progress)
            lg = parse_dir(Path(out)).metric_value or 0.0
        ratios.append(lg / raw)
        print(
            f"  round {r + 1}: raw ORT {raw:8.1f} samples/s   LoadGen Offline {lg:8.1f} samples/s   ratio {lg / raw:.3f}"
        )
    print(
        f"Offline throughput ratio (LoadGen / raw ORT), median of {rounds}: {statistics.median(ratios):.3f}  (goal >= 0.95)"
    )


def plugin_overhead(cache: Path) -> None:
    with tempfile.TemporaryDirectory() as work:
        conftest = Path(work) / "conftest.py"
        conftest.write_text(
            "from pathlib import Path\n"
            "def pytest_mlperf_benchmark_dirs(config):\n"
            f"    return [Path({str(ROOT / 'tests' / 'data' / 'tiny')!r})]\n"
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--mlperf-benchmarks=tiny,bert",
                "--mlperf-fast",
                f"--mlperf-cache-dir={cache}",
                "--junitxml=junit.xml",
            ],
            cwd=work,
            check=False,
            capture_output=True,
        )
        (results,) = Path(work).glob("mlperf-results/*/results.json")
        items = json.loads(results.read_text())["items"]
        # pytest's own time per item: setup + call + teardown, as JUnit records it
        wall = {
            tc.get("name"): float(tc.get("time", "0"))
            for tc in ET.parse(Path(work) / "junit.xml").getroot().iter("testcase")
        }
    overheads = []
    for n, item in enumerate(items):
        name = item["nodeid"].split("::")[-1]
        run_s = item["timing"]["run_s"]
        extra = (wall[name] - run_s) * 1000
        note = (
            "  (first item: its setup prepared the backend: model build + calibration)"
            if n == 0
            else ""
        )
        if n:
            overheads.append(extra)
        print(
            f"  {name:32s} pytest {wall[name]:.3f} s  LoadGen {run_s:.3f} s  overhead {extra:7.1f} ms{note}"
        )
    print(
        f"Plugin overhead per item (after the first): median {statistics.median(overheads):.1f} ms, "
        f"max {max(overheads):.1f} ms  (goal <= 50 ms)"
    )


def collection_time() -> None:
    with tempfile.TemporaryDirectory() as work:
        data = Path(work) / "many"
        data.mkdir()
        template = json.loads((ROOT / "tests" / "data" / "tiny" / "tiny.json").read_text())
        names = []
        for n in range(250):  # 250 benchmarks x 4 scenarios = 1,000 items
            b = json.loads(json.dumps(template))
            b["name"] = f"b{n}"
            for v in b["variants"]:
                v["name"] = v["name"].replace("tiny", f"b{n}")
            (data / f"b{n}.json").write_text(json.dumps(b))
            names.append(f"b{n}")
        (Path(work) / "conftest.py").write_text(
            "from pathlib import Path\n"
            f"def pytest_mlperf_benchmark_dirs(config):\n    return [Path({str(data)!r})]\n"
        )
        args = [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--mlperf-benchmarks={','.join(names)}",
        ]
        base = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        t0 = time.perf_counter()
        subprocess.run(base, cwd=work, check=False, capture_output=True)
        empty = time.perf_counter() - t0
        t0 = time.perf_counter()
        done = subprocess.run(args, cwd=work, check=False, capture_output=True, text=True)
        full = time.perf_counter() - t0
        last = done.stdout.strip().splitlines()[-1]
    print(
        f"Collection: '{last}' in {full:.2f} s; an empty pytest run takes {empty:.2f} s; "
        f"added by 1,000 items (incl. loading/validating 250 data files): {full - empty:.2f} s  (goal < 1 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration-ms", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        print("== Offline: LoadGen vs raw ONNX Runtime (bert reference model) ==")
        offline_ratio(args.rounds, args.duration_ms, Path(cache))
        print("== Plugin overhead per item ==")
        plugin_overhead(Path(cache))
        print("== Collecting 1,000 items ==")
        collection_time()


if __name__ == "__main__":
    main()
