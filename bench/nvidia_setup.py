"""Time the nvidia backend's host + container setup on a re-run; prints figures, asserts nothing.

    python bench/nvidia_setup.py

Uses the stand-in harness image (tests/standin) on the local Docker engine: the first
prepare builds the image, launches the container and runs the staged steps; the second —
a re-run against the already built container — should only probe, check and reuse.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from pytest_mlperf.backends.base import RunRequest, no_progress  # noqa: E402
from pytest_mlperf.backends.nvidia import NvidiaBackend, NvidiaSettings  # noqa: E402
from pytest_mlperf.backends.reference import ReferenceBackend  # noqa: E402
from pytest_mlperf.catalog import default_dirs, load_catalog  # noqa: E402
from tests.loadgen_runs import run_tiny  # noqa: E402
from tests.standin import make_harness  # noqa: E402


def main() -> None:
    catalog = load_catalog(default_dirs())
    bert = catalog.benchmark("bert-99")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        logs = work / "logs"
        ref = ReferenceBackend(work / "cache")
        for scenario in ("Offline", "SingleStream"):
            run_tiny(ref, logs / scenario, scenario, overrides={"min_duration_ms": 0})
        harness = make_harness(work, logs)
        (work / "scratch").mkdir()
        settings = NvidiaSettings(
            harness_dir=harness,
            scratch_path=work / "scratch",
            results_dir=work / "results",
            devices=None,
        )
        plan = [(bert, "Offline"), (bert, "SingleStream")]
        timings = []
        for label in ("first (build image, launch, staged steps)", "re-run (reuse everything)"):
            backend = NvidiaBackend(settings)
            start = time.perf_counter()
            backend.prepare(plan, no_progress)
            timings.append(time.perf_counter() - start)
            print(
                f"{label:45s} setup {timings[-1]:6.2f} s  container: {backend.info['container_action']}"
            )
        out = work / "results" / "item"
        out.mkdir(parents=True)
        request = RunRequest(
            bert, catalog.variant("bert-99"), "Offline", "performance", "default", True, out
        )
        start = time.perf_counter()
        backend.run(request, no_progress)
        run_s = time.perf_counter() - start
        print(f"one item (stand-in make run_harness)          run   {run_s:6.2f} s")
        print(
            f"re-run setup: {timings[1]:.2f} s (goal < 2 s); setup / item run time = {timings[1] / run_s:.2f}; "
            f"a real harness item takes >= 60 s (--test_run), i.e. a ratio <= {timings[1] / 60:.3f} there"
        )
        client = docker.from_env()
        client.containers.get(backend.info["container"]).remove(force=True)
        client.images.remove(backend.info["image"], force=True)


if __name__ == "__main__":
    main()
