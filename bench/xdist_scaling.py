"""Two xdist workers vs one on the reference backend; prints the ratio, asserts nothing.

    python bench/xdist_scaling.py

Runs the same 8 short items with one worker and with `-n 2 --mlperf-split=cpu`, each with
a fresh model cache, and prints wall times, their ratio (goal <= 0.6) and how many
preparations did work (goal: exactly one model build). The items are like MLPerf's own
quick runs, bound by LoadGen's minimum duration (3 s here, 60 s for the harness's
--test_run) rather than by a fixed amount of work: SingleStream, MultiStream and Server
runs of the tiny benchmark through mlperf_run. (Offline runs are compute-bound: two workers on two cores
share the same CPU time, so they are left out.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny"
HAND_WRITTEN = """
import pytest

@pytest.mark.parametrize("scenario", ["Server", "SingleStream", "MultiStream", "SingleStream"] * 2)
def test_short_run(mlperf_run, scenario):
    assert mlperf_run("tiny", scenario, fast=True, min_duration_ms=3000).validity is not None
"""


def run(extra: list[str]) -> tuple[float, dict[str, object]]:
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "conftest.py").write_text(
            "from pathlib import Path\n"
            f"def pytest_mlperf_benchmark_dirs(config):\n    return [Path({str(TINY)!r})]\n"
        )
        (Path(work) / "test_more.py").write_text(HAND_WRITTEN)
        args = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--mlperf-cache-dir={work}/cache",
            *extra,
        ]
        start = time.perf_counter()
        done = subprocess.run(args, cwd=work, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        (results,) = Path(work).glob("mlperf-results/*/results.json")
        data = json.loads(results.read_text())
        if done.returncode != 0:
            print(done.stdout[-2000:])
        return seconds, data


def main() -> None:
    one, data1 = run([])
    two, data2 = run(["-n", "2", "--mlperf-split=cpu"])
    for label, seconds, data in (("1 worker ", one, data1), ("2 workers", two, data2)):
        preps = [p for p in data["preparations"] if p.get("phase") != "later"]  # type: ignore[index,union-attr]
        work = [w for p in data["preparations"] for w in p["work"]]  # type: ignore[index,union-attr]
        built = sum(1 for w in work if w.startswith("built model"))
        print(
            f"{label}: {len(data['items']):2d} items in {seconds:6.2f} s; "  # type: ignore[arg-type]
            f"preparations: {len(preps)}, model builds: {built}"
        )  # type: ignore[arg-type]
    print(f"2-worker / 1-worker wall time: {two / one:.2f}  (goal <= 0.6)")


if __name__ == "__main__":
    main()
