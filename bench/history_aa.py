"""The history gate on this machine: A/A sessions of one build, then a real 3x slowdown.

    python bench/history_aa.py                      # 10 sessions + 1 slowed down, bert Offline
    python bench/history_aa.py --sessions 6 --slowdown 3 --benchmarks bert --scenarios Offline

Runs ``--sessions`` pytest sessions of the same build, one LoadGen run each
(``--mlperf-fast``), each with ``--mlperf-history`` on one store, so each is judged against
the history before it (what the README's CI gate does run after run); then one session
with the reference SUT slowed down (``MLPERF_BENCH_SLOWDOWN``: every model call takes
that many times as long). Prints, per session, the gate's status and figures; then false
alarms (A/A sessions called "regressed", goal 0), inconclusive count, and whether the
slowdown was flagged. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def session(
    work: Path, store: Path, benchmarks: str, scenarios: str, slowdown: float | None
) -> tuple[int, list[dict[str, Any]]]:
    """One session; (exit code, its records)."""
    results = work / "results"
    before = set(results.glob("*/results.json"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLPERF_BENCH_SLOWDOWN", None)
    if slowdown:
        env["MLPERF_BENCH_SLOWDOWN"] = str(slowdown)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--mlperf-benchmarks={benchmarks}",
            f"--mlperf-scenarios={scenarios}",
            "--mlperf-mode=performance",
            "--mlperf-fast",
            f"--mlperf-history={store}",
            f"--mlperf-thresholds={work / 'floors.json'}",
            "--mlperf-history-ref=bench",
            f"--mlperf-results-dir={results}",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    new = sorted(set(results.glob("*/results.json")) - before)
    if not new:
        print(done.stdout[-2000:], done.stderr[-2000:])
        return done.returncode, []
    return done.returncode, json.loads(new[-1].read_text())["items"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--slowdown", type=float, default=3.0)
    parser.add_argument("--benchmarks", default="bert")
    parser.add_argument("--scenarios", default="Offline")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlperf-bench-aa-"))
    store = work / "history.sqlite"
    # floors nobody misses: the bench measures the history gate, not the shipped thresholds
    # (a shared, loaded machine misses bert Offline's 50 samples/s, and a failed session is
    # never added as good)
    floors = [
        {"benchmark": f"{b}-99", "scenario": sc, "min_samples_per_second": 0.001}
        for b in args.benchmarks.split(",")
        for sc in args.scenarios.split(",")
        if sc in ("Offline", "Server")
    ]
    (work / "floors.json").write_text(
        json.dumps({"schema_version": 1, "system": "reference-cpu", "thresholds": floors})
    )
    counts = {"regressed": 0, "inconclusive": 0, "judged": 0}
    print(f"store {store}; {args.sessions} A/A sessions, then one at {args.slowdown:g}x slower")
    runs = [(i, None) for i in range(1, args.sessions + 1)] + [(args.sessions + 1, args.slowdown)]
    flagged = None
    for index, slowdown in runs:
        rc, items = session(work, store, args.benchmarks, args.scenarios, slowdown)
        for item in items:
            b = item.get("baseline") or {}
            status = b.get("status")
            tag = f"{args.slowdown:g}x slower" if slowdown else "A/A"
            value = item["metric"]["value"]
            print(
                f"session {index:2d} ({tag}): exit {rc}, {item['benchmark']} {item['scenario']} "
                f"{value} {item['metric']['unit']}: {status}: {b.get('reason', '')[:200]}"
            )
            if slowdown:
                flagged = status == "regressed"
                continue
            counts["judged"] += 1
            if status in counts:
                counts[status] += 1
    print(
        f"A/A: {counts['regressed']} false alarms in {counts['judged']} judgements, "
        f"{counts['inconclusive']} inconclusive (history below 5 records); "
        f"{args.slowdown:g}x slowdown flagged: {flagged}"
    )


if __name__ == "__main__":
    main()
