"""Walk one stand-in item's path through the package and print the figures of the walk.

    python bench/item_walk.py            # one 3d-unet-99 Offline performance item
    python bench/item_walk.py --calls    # also each climb back up, as caller -> callee

Issue 27 point 2: "walking an item's spec through the code enters N rooms, visits runner.py
M times and climbs back up K times". The item runs in a real pytest session (this
checkout's plugin, ``-p no:cacheprovider``) on a stand-in backend that copies NVIDIA's
published v4.1 LoadGen logs (``../shared/data``), so only the plugin's own code is walked.
``sys.setprofile`` records every Python call made while ``MlperfItem.runtest`` runs; a call
is attributed to the nearest frame in ``pytest_mlperf`` (stdlib, pytest and the stand-in are
transparent). Printed:

- rooms: distinct ``pytest_mlperf`` modules the walk enters;
- visits per module: the walk arriving in that module from another one, by a call or by a
  return from a call it made (``runner.py``'s is the issue's "visits runner.py");
- climbs back up: calls from a module below the plugin layer into a plugin-layer module
  (``PLUGIN_LAYER`` of tests/test_layers.py; callbacks the session passed down count), as
  asks (the call returned something the lower module goes on with: the backend, the system
  name) and tells (it returned None: a progress line, a record announced). A busy machine
  adds a tell (the machine-load warning line), as does waiting for another process's
  device lock. A pytest hook a lower module fires (through pluggy, to whichever plugins
  implement it) is counted apart, as a hook fired from below, not as a climb.

Asserts nothing; no figure depends on timing but the tells a busy machine or a held device
lock adds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOGS = (
    ROOT.parent
    / "shared/data/mlperf-inference-results-v4.1/closed/NVIDIA/results/H200-SXM-141GBx8_TRT"
    / "3d-unet-99/Offline/performance/run_1"
)
sys.path.insert(0, str(ROOT))
from tests.test_layers import PLUGIN_LAYER as _LAYER  # noqa: E402

#: the plugin layer as tests/test_layers.py names it, without the package prefix
PLUGIN_LAYER = tuple(sorted(name.removeprefix("pytest_mlperf.") for name in _LAYER))

CONFTEST = '''
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

from pytest_mlperf.backends.base import RunOutcome
from pytest_mlperf.catalog import CONFIG_VERS

LOGS = Path({logs!r})
PACKAGE = {package!r}
PLUGIN_LAYER = {layer!r}


class StandIn:
    """Copies published LoadGen logs into the item's directory."""

    name = "standin"

    def system_name(self):
        return "standin-system"

    def describe(self):
        return {{"backend": "standin"}}

    def supported_config_vers(self):
        return CONFIG_VERS

    def host_record(self):
        raise NotImplementedError

    def prepare(self, plan, progress):
        pass

    def run(self, request, progress):
        for name in ("mlperf_log_detail.txt", "mlperf_log_summary.txt"):
            shutil.copy(LOGS / name, request.outdir / name)
        return RunOutcome(log_dir=request.outdir, settings={{"device": "standin"}}, run_seconds=1.0)

    def close(self):
        pass


def pytest_mlperf_backend_names():
    return ["standin"]


def pytest_mlperf_make_backend(name, run_config, config):
    return StandIn() if name == "standin" else None


def _through_hook(frame):
    """Whether the call of ``frame`` came through pluggy (a hook) since the last package frame."""
    frame = frame.f_back
    while frame is not None and not frame.f_code.co_filename.startswith(PACKAGE):
        if "/pluggy/" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _module(frame):
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(PACKAGE):
            rel = path[len(PACKAGE) :].lstrip("/").removesuffix(".py")
            return rel.replace("/", ".").removesuffix(".__init__")
        frame = frame.f_back
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if type(item).__name__ != "MlperfItem":
        return (yield)
    rooms, visits, climbs, asked, hooks = set(), Counter(), [], {{}}, []

    def profile(frame, event, arg):
        if event not in ("call", "return"):
            return
        callee = _module(frame)
        if callee is None or not frame.f_code.co_filename.startswith(PACKAGE):
            return
        caller = _module(frame.f_back)
        if event == "return":  # back in the caller's module: another visit there
            if caller and caller != callee:
                visits[caller] += 1
            if id(frame) in asked:  # a climb that brought something back: an ask
                asked.pop(id(frame))[1] = "ask" if arg is not None else "tell"
            return
        rooms.add(callee)
        if caller != callee:
            visits[callee] += 1
        if caller and caller not in PLUGIN_LAYER and callee in PLUGIN_LAYER:
            if _through_hook(frame):  # a pytest hook the lower module fired: not a climb
                hooks.append(f"{{caller}} -> {{callee}}.{{frame.f_code.co_name}}")
                return
            climb = [f"{{caller}} -> {{callee}}.{{frame.f_code.co_name}}", "tell"]
            climbs.append(climb)
            asked[id(frame)] = climb

    sys.setprofile(profile)
    try:
        return (yield)
    finally:
        sys.setprofile(None)
        below = sorted(rooms - set(PLUGIN_LAYER))
        print(f"\\nWALK rooms {{len(rooms)}}: {{', '.join(sorted(rooms))}}")
        print(f"WALK rooms below the plugin layer {{len(below)}}")
        print(f"WALK visits runner {{visits['runner']}}")
        print("WALK visits " + ", ".join(f"{{m}} {{n}}" for m, n in sorted(visits.items())))
        asks = sum(1 for _, kind in climbs if kind == "ask")
        print(f"WALK climbs back up {{len(climbs)}} ({{asks}} asks, {{len(climbs) - asks}} tells)")
        for climb, kind in climbs:
            print(f"WALK climb {{climb}} ({{kind}})")
        print(f"WALK hooks fired from below {{len(hooks)}}")
        for hook in hooks:
            print(f"WALK climb {{hook}} (hook)")
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", action="store_true", help="print each climb back up")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        conftest = CONFTEST.format(
            logs=str(LOGS), package=str(ROOT / "pytest_mlperf"), layer=PLUGIN_LAYER
        )
        (work / "conftest.py").write_text(conftest)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-s",
            "-q",
            "--mlperf-backend=standin",
            "--mlperf-benchmarks=3d-unet-99",
            "--mlperf-scenarios=Offline",
            "--mlperf-mode=performance",
            f"--mlperf-results-dir={work / 'results'}",
            f"--mlperf-cache-dir={work / 'cache'}",
        ]
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("WALK")]
        if not lines:
            sys.exit(f"no walk recorded (exit {done.returncode}):\n{done.stdout}{done.stderr}")
        for line in lines:
            if args.calls or not line.startswith("WALK climb "):
                print(line.removeprefix("WALK "))
        print(f"pytest exit code {done.returncode}: {done.stdout.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
