"""Smallest regression ``--mlperf-repeat=3`` detects, with no false alarm on same-build pairs.

    python bench/regression_detect.py              # 10 same-build pairs (11 sessions), bert
    python bench/regression_detect.py --pairs 3 --benchmarks bert --scenarios Offline

Runs sessions of the same build with ``--mlperf-repeat=3 --mlperf-fast``, each compared
with the session before it, run with ``--mlperf-baseline`` on it (its targets pinned:
what a CI gate with a saved baseline does; ``--independent``: two fresh sessions per
pair), with the baseline rule (``compare_pair``, tolerance --tolerance):
  * false alarms: same-build pairs the rule calls "regressed" (goal 0), and how many it
    calls "inconclusive" (noise above the tolerance);
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
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_mlperf.baseline import REGRESSED, SERVER_LATENCY_KEY, compare_pair  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--benchmarks", default="bert")
    parser.add_argument("--scenarios", default=None)
    parser.add_argument("--tolerance", type=float, default=5.0)
    parser.add_argument(
        "--independent",
        dest="rolling",
        action="store_false",
        help="two fresh sessions per pair (default: each session is compared with the one "
        "before it, as a CI gate's saved baseline is; pairs + 1 sessions)",
    )
    parser.add_argument("--save", type=Path, help="write every session's records here (JSON)")
    args = parser.parse_args()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-mlperf"
    load = os.getloadavg()
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    busy = 0
    previous: list[dict[str, Any]] | None = None
    plugin_says: dict[str, list[str]] = {}
    saved = Path(tempfile.mkdtemp()) / "baseline.json"
    for i in range(args.pairs):
        if args.rolling and previous is not None:
            a = previous  # the gate's own pattern: each run against the one before it
        else:
            saved.unlink(missing_ok=True)
            a = session(args.benchmarks, args.scenarios, cache, saved)
        b = session(args.benchmarks, args.scenarios, cache, saved)  # against a, pinned
        previous = b
        gate = [
            (r["scenario"], (r.get("baseline") or {}).get("status"))
            for r in b
            if isinstance(r.get("baseline"), dict)
        ]
        for scenario, status in gate:
            plugin_says.setdefault(scenario, []).append(str(status))
        if gate:
            print(f"  the plugin's own baseline verdicts: {gate}", flush=True)
        busy += any((r.get("machine_load") or {}).get("busy") for r in a + b)
        by_key = {(r["benchmark"], r["scenario"]): r for r in a}
        for r in b:
            if (r["benchmark"], r["scenario"]) in by_key:
                pairs.append((by_key[(r["benchmark"], r["scenario"])], r))
        print(f"pair {i + 1}/{args.pairs} done", flush=True)
    if args.save:
        args.save.write_text(json.dumps([[a, b] for a, b in pairs], indent=1), encoding="utf-8")
    print(
        f"\nmachine: {os.cpu_count()} CPUs, load average at start {load[0]:.2f}; "
        f"{busy} of {args.pairs} pairs recorded a busy machine"
    )
    items = sorted({(a["benchmark"], a["scenario"]) for a, _ in pairs})
    for key in items:
        mine = [(a, b) for a, b in pairs if (a["benchmark"], a["scenario"]) == key]
        statuses = [compare_pair(b, a, args.tolerance, "bench").status for a, b in mine]
        spreads = [b.get("repeat", {}).get("spread_pct") for _, b in mine]
        smallest = None
        for pct in range(1, 51):
            if all(
                compare_pair(slowed(b, pct), a, args.tolerance, "bench").status == REGRESSED
                for a, b in mine
            ):
                smallest = pct
                break
        print(
            f"  {key[0]} {key[1]:12s} pairs {len(mine)}  false alarms "
            f"{statuses.count(REGRESSED)}  inconclusive {statuses.count('inconclusive')}  "
            f"spread median {sorted(s for s in spreads if s is not None)[len(spreads) // 2] if spreads else '-'} %  "
            f"smallest regression always detected: {smallest if smallest else '> 50'} %"
        )
        said = plugin_says.get(key[1], [])
        if said:
            print(
                "    the plugin's verdicts in those sessions: "
                + ", ".join(f"{s} {said.count(s)}" for s in sorted(set(said)))
            )


if __name__ == "__main__":
    main()
