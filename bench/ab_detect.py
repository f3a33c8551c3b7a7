"""False alarms and detection of ``--mlperf-ab`` (paired A/B in one session) on this machine.

    python bench/ab_detect.py                          # 10 A/A + 5 trials each at 3, 5, 10 %
    python bench/ab_detect.py --aa 3 --slowdowns 5 --trials 2 --save ab.json
    python bench/ab_detect.py --load ab.json           # judge saved sessions again

Every session is ``pytest --mlperf-benchmarks=bert --mlperf-scenarios=Offline --mlperf-fast
--mlperf-ab='threads=N;threads=N' --mlperf-ab-rounds=R`` (N: this process's CPUs; both sides
get a backend of their own, as a real A/B does), in a fresh results directory:
  * A/A: the same option set on both sides; a "regressed" is a false alarm (goal 0 of 10);
  * detection: the candidate slowed by a real, calibrated delay in the reference SUT
    (bench-only ``PYTEST_MLPERF_BENCH_SLOWDOWN_B=<percent>``: after each model call the
    candidate's SUT sleeps that call's time x p / (100 - p), so its throughput drops by p %);
    the smallest slowdown that every trial calls "regressed" (goal 5 % with 5 rounds).
A/A and slowdown sessions are interleaved, so the machine's drift over the bench hits
both. Each session's rounds (ratios) are judged again at every ``--tolerances`` value with
the plugin's own rule (``judge_ratios``): the session itself ran at the first one.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_mlperf.history.paired import REGRESSED, judge_ratios  # noqa: E402


def session(
    slowdown: float, rounds: int, tolerance: float, cache: Path, threads: int
) -> dict[str, Any]:
    """One A/B session; returns the item's ``ab`` object and machine figures."""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--mlperf-benchmarks=bert",
            "--mlperf-scenarios=Offline",
            "--mlperf-fast",
            f"--mlperf-ab=threads={threads};threads={threads}",
            f"--mlperf-ab-rounds={rounds}",
            f"--mlperf-tolerance={tolerance:g}",
            f"--mlperf-results-dir={results}",
            f"--mlperf-cache-dir={cache}",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("PYTEST_MLPERF_BENCH_SLOWDOWN_B", None)
        if slowdown:
            env["PYTEST_MLPERF_BENCH_SLOWDOWN_B"] = f"{slowdown:g}"
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False, env=env)
        took = time.perf_counter() - started
        found = sorted(results.glob("*/results.json"))
        if not found:
            print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
            return {"slowdown": slowdown, "ab": None, "seconds": took}
        (item,) = json.loads(found[-1].read_text())["items"]
        return {
            "slowdown": slowdown,
            "ab": item.get("ab"),
            "busy": (item.get("machine_load") or {}).get("busy_runs"),
            "seconds": round(took, 1),
            "load": os.getloadavg()[0],
        }


def judge(sessions: list[dict[str, Any]], tolerances: list[float]) -> None:
    """Print A/A false alarms and the smallest slowdown every trial flags, per tolerance."""
    by_slowdown: dict[float, list[list[float]]] = {}
    for s in sessions:
        if s["ab"] and s["ab"]["ratios"]:
            by_slowdown.setdefault(s["slowdown"], []).append(s["ab"]["ratios"])
    print(
        "\nslowdown  sessions  median ratio  median CI half-width  "
        + "  ".join(f"tol {t:g} %: pass/inc/REG" for t in tolerances)
    )
    flagged_every: dict[float, float | None] = {t: None for t in tolerances}
    for slowdown in sorted(by_slowdown):
        trials = by_slowdown[slowdown]
        judged = {t: [judge_ratios(r, t) for r in trials] for t in tolerances}
        first = judged[tolerances[0]]
        half = statistics.median((j.high - j.low) / 2 for j in first)
        cells = []
        for t in tolerances:
            statuses = [j.status for j in judged[t]]
            cells.append(
                f"{statuses.count('passed')}/{statuses.count('inconclusive')}/"
                f"{statuses.count(REGRESSED)}".ljust(22)
            )
            every = statuses.count(REGRESSED) == len(statuses)
            if slowdown and every and flagged_every[t] is None:
                flagged_every[t] = slowdown
        ratio = statistics.median(j.ratio for j in first)
        print(
            f"{slowdown:>6g} %  {len(trials):>8}  {ratio:>12.3f}  {half:>20.3f}  "
            + "  ".join(cells)
        )
    for t in tolerances:
        aa = [judge_ratios(r, t).status for r in by_slowdown.get(0.0, [])]
        smallest = flagged_every[t]
        print(
            f"tolerance {t:g} %: A/A false alarms {aa.count(REGRESSED)} of {len(aa)} "
            f"(inconclusive {aa.count('inconclusive')}); smallest slowdown flagged in every "
            f"trial: {'none of those tried' if smallest is None else f'{smallest:g} %'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aa", type=int, default=10, help="A/A sessions")
    parser.add_argument("--slowdowns", default="3,5,10", help="candidate slowdowns, percent")
    parser.add_argument("--trials", type=int, default=5, help="sessions per slowdown")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tolerances", default="2,1,3,5", help="first: the sessions' own")
    parser.add_argument("--save", type=Path)
    parser.add_argument("--load", type=Path)
    args = parser.parse_args()
    tolerances = [float(t) for t in args.tolerances.split(",")]
    if args.load:
        judge(json.loads(args.load.read_text())["sessions"], tolerances)
        return
    threads = len(os.sched_getaffinity(0))
    slowdowns = [float(s) for s in args.slowdowns.split(",") if s]
    plan: list[float] = []
    for trial in range(max(args.aa, args.trials)):  # interleaved: A/A, each slowdown, ...
        plan += [0.0] if trial < args.aa else []
        plan += slowdowns if trial < args.trials else []
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-mlperf"
    sessions = []
    print(f"{len(plan)} sessions, {args.rounds} rounds each, threads {threads}; plan {plan}")
    for i, slowdown in enumerate(plan, 1):
        s = session(slowdown, args.rounds, tolerances[0], cache, threads)
        sessions.append(s)
        ab = s["ab"] or {}
        print(
            f"[{i}/{len(plan)}] slowdown {slowdown:g} %: {ab.get('status')} ratio "
            f"{ab.get('ratio')} CI {ab.get('ci_low')}-{ab.get('ci_high')} "
            f"({s['seconds']} s, load {s.get('load', 0):.1f}, busy runs {s.get('busy')})",
            flush=True,
        )
        if args.save:
            args.save.write_text(json.dumps({"sessions": sessions}, indent=1))
    judge(sessions, tolerances)


if __name__ == "__main__":
    main()
