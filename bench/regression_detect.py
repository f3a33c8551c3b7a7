"""Smallest regression ``--mlperf-repeat=3`` detects, with no false alarm on same-build pairs.

    python bench/regression_detect.py              # 10 same-build pairs (11 sessions), bert
    python bench/regression_detect.py --pairs 3 --benchmarks bert --scenarios Offline
    python bench/regression_detect.py --load sessions.json   # judge a --save's sessions again

Runs sessions of the same build with ``--mlperf-repeat=3 --mlperf-fast``, each compared
with the session before it, run with ``--mlperf-baseline`` on it (its targets pinned:
what a CI gate with a saved baseline does; ``--independent``: two fresh sessions per
pair), with the baseline rule (``compare_pair``, tolerance --tolerance):
  * false alarms: same-build pairs the rule calls "regressed" (goal 0), and how many it
    calls "inconclusive" (noise above the tolerance);
  * the same with each session against the --pool sessions before it pooled into one
    baseline (``--mlperf-baseline=a,b``: its noise then holds the drift between sessions);
  * detection: the second run's figures (median, min, max) scaled by a synthetic slowdown
    of r % (throughput x (1 - r), latency x (1 + r)); the smallest r (1 % steps) that every
    pair flags "regressed" (goal <= 5 % on the reference backend).
The slowdown is applied to measured figures, not to the model: it shows what the noise of
these runs lets the rule see. Asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_mlperf.baseline import REGRESSED, compare_pair  # noqa: E402
from pytest_mlperf.history.results_file import (  # noqa: E402
    SERVER_LATENCY_KEY,
    ResultsFile,
    pool_results,
)


def session(
    benchmarks: str, scenarios: str | None, cache: Path, baseline: Path | None = None
) -> list[dict[str, Any]]:
    """One session's records; with ``baseline`` it runs against it (its targets pinned) and
    the file is replaced by this session's results, as a gate's saved baseline is."""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--mlperf-benchmarks={benchmarks}",
            "--mlperf-fast",
            "--mlperf-repeat=3",
            f"--mlperf-results-dir={results}",
            f"--mlperf-cache-dir={cache}",
        ]
        if scenarios:
            cmd.append(f"--mlperf-scenarios={scenarios}")
        if baseline is not None and baseline.is_file():
            cmd.append(f"--mlperf-baseline={baseline}")
        subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
        found = sorted(results.glob("*/results.json"))
        if not found:
            return []
        if baseline is not None:
            baseline.write_bytes(found[-1].read_bytes())
        items: list[dict[str, Any]] = json.loads(found[-1].read_text())["items"]
        return items


def slowed(record: dict[str, Any], pct: float) -> dict[str, Any]:
    """``record`` as a system ``pct`` % slower would log it: its metric, and the Server p99
    latency a comparison at a pinned target reads (every repeat's and LoadGen's)."""
    out = copy.deepcopy(record)
    factor = 1 - pct / 100 if record["metric"]["unit"] == "samples/s" else 1 + pct / 100
    rep = out.get("repeat") or {}
    for key in ("median", "min", "max"):
        if rep.get(key) is not None:
            rep[key] *= factor
    if out["metric"]["value"] is not None:
        out["metric"]["value"] *= factor
    for run in rep.get("runs") or []:
        if isinstance(run.get("p99_latency_ns"), (int, float)):
            run["p99_latency_ns"] *= 1 + pct / 100
    loadgen = out.get("loadgen") or {}
    if isinstance(loadgen.get(SERVER_LATENCY_KEY), (int, float)):
        loadgen[SERVER_LATENCY_KEY] *= 1 + pct / 100
    return out


def analyse(
    sessions: list[list[dict[str, Any]]], pool: int, tolerance: float
) -> list[tuple[tuple[str, str], list[str], list[float], int | None, int]]:
    """Per item: the rule's status for each session against the ``pool`` sessions before it
    (pooled as ``--mlperf-baseline=a,b`` pools them), the sessions' spreads, and the
    smallest synthetic slowdown (1 % steps) every comparison flags, and the median over the
    comparisons of the smallest one each flags (101: none up to 100 %)."""
    comparisons: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for i in range(pool, len(sessions)):
        files = [_as_file(sessions[j], f"session-{j + 1}") for j in range(i - 1, i - pool - 1, -1)]
        base = pool_results(files)
        for current in sessions[i]:
            found = base.find(current["benchmark"], current["scenario"], current["mode"])
            if found is not None:
                key = (current["benchmark"], current["scenario"])
                comparisons.setdefault(key, []).append((dict(found), current))
    out = []
    for key, mine in sorted(comparisons.items()):
        statuses = [compare_pair(b, a, tolerance, "bench").status for a, b in mine]
        spreads = [float((b.get("repeat") or {}).get("spread_pct") or 0.0) for _, b in mine]
        per_pair = [_smallest_flagged(a, b, tolerance) for a, b in mine]
        smallest = None if None in per_pair else max(x for x in per_pair if x is not None)
        typical = sorted(x if x is not None else 101 for x in per_pair)[len(per_pair) // 2]
        out.append((key, statuses, spreads, smallest, typical))
    return out


def _smallest_flagged(a: dict[str, Any], b: dict[str, Any], tolerance: float) -> int | None:
    """The smallest slowdown (1 % steps up to 100 %) of ``b`` that the rule calls regressed."""
    for pct in range(1, 101):
        if compare_pair(slowed(b, pct), a, tolerance, "bench").status == REGRESSED:
            return pct
    return None


def _as_file(records: list[dict[str, Any]], run_id: str) -> ResultsFile:
    return ResultsFile(Path(run_id), run_id, None, None, None, None, True, tuple(records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--benchmarks", default="bert")
    parser.add_argument("--scenarios", default=None)
    parser.add_argument("--tolerance", type=float, default=5.0)
    parser.add_argument(
        "--pool",
        type=int,
        default=2,
        help="also judge each session against this many sessions before it, pooled "
        "(--mlperf-baseline=a,b); default 2",
    )
    parser.add_argument(
        "--independent",
        dest="rolling",
        action="store_false",
        help="two fresh sessions per pair (default: each session is compared with the one "
        "before it, as a CI gate's saved baseline is; pairs + 1 sessions)",
    )
    parser.add_argument("--save", type=Path, help="write every session's records here (JSON)")
    parser.add_argument(
        "--load", type=Path, help="judge the sessions a --save wrote instead of running any"
    )
    args = parser.parse_args()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-mlperf"
    load = os.getloadavg()
    sessions: list[list[dict[str, Any]]] = []
    busy = 0
    plugin_says: dict[str, list[str]] = {}
    saved = Path(tempfile.mkdtemp()) / "baseline.json"
    if args.load:
        sessions = json.loads(args.load.read_text(encoding="utf-8"))["sessions"]
        args.rolling = True
    for i in range(0 if args.load else args.pairs):
        if not args.rolling or not sessions:
            saved.unlink(missing_ok=True)
            sessions.append(session(args.benchmarks, args.scenarios, cache, saved))
        b = session(args.benchmarks, args.scenarios, cache, saved)  # against a, pinned
        sessions.append(b)
        gate = [
            (r["scenario"], (r.get("baseline") or {}).get("status"))
            for r in b
            if isinstance(r.get("baseline"), dict)
        ]
        for scenario, status in gate:
            plugin_says.setdefault(scenario, []).append(str(status))
        if gate:
            print(f"  the plugin's own baseline verdicts: {gate}", flush=True)
        print(f"pair {i + 1}/{args.pairs} done", flush=True)
    busy = sum(any((r.get("machine_load") or {}).get("busy") for r in s) for s in sessions)
    if args.save:
        args.save.write_text(json.dumps({"sessions": sessions}, indent=1), encoding="utf-8")
    print(
        f"\nmachine: {os.cpu_count()} CPUs, load average at start {load[0]:.2f}; "
        f"{busy} of {len(sessions)} sessions recorded a busy machine"
    )
    if not args.rolling:  # independent pairs: each second session against its first
        sessions_by_pair = [sessions[i : i + 2] for i in range(0, len(sessions) - 1, 2)]
        results = [analyse(pair, 1, args.tolerance) for pair in sessions_by_pair]
        merged: dict[tuple[str, str], tuple[list[str], list[float], list[int | None], list[int]]]
        merged = {}
        for result in results:
            for key, statuses, spreads, smallest, typical in result:
                entry = merged.setdefault(key, ([], [], [], []))
                entry[0].extend(statuses)
                entry[1].extend(spreads)
                entry[2].append(smallest)
                entry[3].append(typical)
        table = {
            1: [
                (
                    k,
                    st,
                    sp,
                    None if None in sm else max(x for x in sm if x is not None),
                    sorted(ty)[len(ty) // 2],
                )
                for k, (st, sp, sm, ty) in sorted(merged.items())
            ]
        }
    else:
        table = {n: analyse(sessions, n, args.tolerance) for n in sorted({1, args.pool})}
    for pool, rows in table.items():
        label = "the session before" if pool == 1 else f"the {pool} sessions before, pooled"
        print(f"each session against {label} (tolerance {args.tolerance:g} %):")
        for key, statuses, spreads, smallest, typical in rows:
            print(
                f"  {key[0]} {key[1]:12s} comparisons {len(statuses)}  false alarms "
                f"{statuses.count(REGRESSED)}  inconclusive {statuses.count('inconclusive')}  "
                f"spread median {statistics.median(spreads):.1f} %  slowdown detected: "
                f"median {typical if typical <= 100 else '> 100'} %, "
                f"every time {smallest if smallest else '> 100'} %"
            )
    for scenario, said in sorted(plugin_says.items()):
        print(
            f"  the plugin's own verdicts ({scenario}, against the session before): "
            + ", ".join(f"{s} {said.count(s)}" for s in sorted(set(said)))
        )


if __name__ == "__main__":
    main()
