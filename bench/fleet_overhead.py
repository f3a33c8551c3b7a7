"""The xdist controller's overhead per Slurm node in a fleet run; prints numbers, asserts nothing.

    bash .ci/start-slurm            # as root: the n1-n3 cluster of docs/fleet.md
    python bench/fleet_overhead.py  # PYTHONPATH must reach this checkout's pytest_mlperf

1. On the real cluster: the same fleet session (tiny SingleStream, --mlperf-fast, one item
   per node, --dist each) on 1, 2 and 3 nodes. The controller process's own CPU time (user +
   sys from wait4: it and the srun clients it starts, not the workers, which run under
   slurmd) and its wall time; the slope over the node count is the per-node cost.
2. In-process: the controller's per-node work on one item's real logs (unpack the base64
   payload, relocate the record) and the fleet view over 3 nodes × 50 items.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny"
sys.path.insert(0, str(ROOT))


def fleet_session(nodes: int, cache: Path) -> dict[str, Any]:
    """One fleet session on n1..n<nodes>: controller CPU and wall seconds, bytes sent."""
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "conftest.py").write_text(
            "from pathlib import Path\n"
            f"def pytest_mlperf_benchmark_dirs(config):\n    return [Path({str(TINY)!r})]\n"
        )
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "--mlperf-benchmarks=tiny",
            "--mlperf-scenarios=SingleStream",
            "--mlperf-fast",
            f"--mlperf-cache-dir={cache}",
            f"--mlperf-slurm-nodes=n[1-{nodes}]",
        ]
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            print(out[-2000:])
            raise SystemExit(f"fleet session on {nodes} node(s) failed")
        data = json.loads(next(Path(work, "mlperf-results").glob("*/results.json")).read_text())
        sent = sum(i["transfer"]["bytes"] for i in data["items"])
    return {"nodes": nodes, "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "bytes": sent}


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def in_process(item_dir: Path | None) -> None:
    """Controller work per node and item, without the cluster."""
    from pytest_mlperf.fleet import fleet_view
    from pytest_mlperf.transfer import pack_item, relocate_record, unpack_item

    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "node" / "run"
        item = root / "tiny-99" / "SingleStream" / "performance"
        if item_dir is not None:
            shutil.copytree(item_dir, item)
        else:  # no cluster run to copy: logs of a typical size
            item.mkdir(parents=True)
            (item / "mlperf_log_detail.txt").write_text("x" * 30_000)
            (item / "mlperf_log_summary.txt").write_text("x" * 3_000)
        payload = pack_item(root, item)
        dest = Path(work) / "controller" / "nodes" / "n1"
        runs = 200
        start = time.perf_counter()
        for _ in range(runs):
            unpack_item(dest, payload)
            relocate_record({"log_dir": str(item), "item_dir": str(item)}, str(root), dest, payload)
        per_item = (time.perf_counter() - start) / runs
    records = [
        {
            "benchmark": f"b{i}",
            "scenario": "Offline",
            "mode": "performance",
            "config_ver": "default",
            "metric": {"name": "m", "value": 1000.0 + n, "unit": "samples/s"},
            "verdict": {"outcome": "passed"},
            "node": {"name": f"n{n}"},
        }
        for i in range(50)
        for n in range(3)
    ]
    start = time.perf_counter()
    fleet_view(records)
    view_s = time.perf_counter() - start
    print(
        f"in-process: unpack + relocate one item ({payload['bytes']} bytes of logs, "
        f"{len(payload['files'])} files): {per_item * 1e3:.2f} ms; "
        f"fleet view of 3 nodes x 50 items: {view_s * 1e3:.2f} ms"
    )


def main() -> None:
    """Print the measurements."""
    if shutil.which("srun") is None:
        print("no srun: start the cluster with `bash .ci/start-slurm` (root); in-process only")
        in_process(None)
        return
    with tempfile.TemporaryDirectory() as cache_dir:
        cache = Path(cache_dir)
        fleet_session(1, cache)  # builds the model once, not measured
        rows = [fleet_session(n, cache) for n in (1, 2, 3)]
    for row in rows:
        print(
            f"{row['nodes']} node(s): controller CPU {row['cpu_s']:.2f} s, wall "
            f"{row['wall_s']:.1f} s, logs sent back {row['bytes']} bytes"
        )
    xs = [float(r["nodes"]) for r in rows]
    print(
        f"per node: controller CPU {slope(xs, [r['cpu_s'] for r in rows]) * 1e3:.0f} ms, "
        f"wall {slope(xs, [r['wall_s'] for r in rows]):.2f} s "
        "(busy machine: the workers share its cores)"
    )
    in_process(None)


if __name__ == "__main__":
    main()
