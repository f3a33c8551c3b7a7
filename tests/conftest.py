"""Shared helpers: a model cache shared by every pytester run, and the tiny test benchmark."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

# Import the native extensions once, before any in-process pytester run: pytester restores
# sys.modules after each run, and numpy/onnxruntime cannot be imported twice in one process.
import mlperf_loadgen  # noqa: F401
import numpy  # noqa: F401
import onnx  # noqa: F401
import onnxruntime  # noqa: F401
import pytest

import pytest_mlperf

# The same for every pytest_mlperf module: a module first imported inside one in-process run
# is dropped after it and imported afresh by the next, while caches in modules that stay
# (functools caches of loaded data sets) would hold instances of the dropped classes.
for _module in pkgutil.walk_packages(pytest_mlperf.__path__, "pytest_mlperf."):
    importlib.import_module(_module.name)

# The same for what a session imports late (report plots, history statistics, the Docker and
# PostgreSQL clients, and hypothesis's pytest plugin, where installed, at its terminal
# summary): imported once here instead of again in each in-process run (~4 s of CPU per run).
LATE_IMPORTS = (
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "scipy.stats",
    "ruptures",
    "docker",
    "psycopg",
    "hypothesis.internal.observability",
)
for _name in LATE_IMPORTS:
    if importlib.util.find_spec(_name.split(".")[0]) is not None:
        importlib.import_module(_name)

DATA = Path(__file__).parent / "data"
TINY_DIR = DATA / "tiny"

#: the services tests need that CI must provide (.ci/start-docker, start-slurm, install-browser)
SERVICES = ("docker", "slurm", "chromium", "postgresql")


def in_ci(env: dict[str, str] | None = None) -> bool:
    """``CI`` is set to true (GitHub Actions, GitLab CI and .ci/run set ``CI=true``)."""
    value = (os.environ if env is None else env).get("CI", "")
    return value.strip().lower() in ("true", "1", "yes")


def requires_service(service: str, reason: str) -> NoReturn:
    """A test cannot run because ``service`` is missing (``reason`` says why, and how to
    get it): skipped locally; in CI (``CI=true``) a failure, so that CI never passes with
    the tests that need the service untested. Every such skip goes through here."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; valid: {', '.join(SERVICES)}")
    if in_ci():
        pytest.fail(f"{service} is required in CI (CI=true) but missing: {reason}", pytrace=False)
    pytest.skip(f"{service} missing: {reason}")


#: conftest.py for pytester directories: adds the tiny benchmark through our own hook.
TINY_CONFTEST = f"""
from pathlib import Path

def pytest_mlperf_benchmark_dirs(config):
    return [Path({str(TINY_DIR)!r})]
"""


#: the environment pytest-xdist gives its workers; a run inside a test never inherits it
XDIST_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


def shared_dir(factory: pytest.TempPathFactory, config: pytest.Config, name: str) -> Path:
    """``name`` in the directory every pytest-xdist worker of this session shares (the
    base temp dir's parent on a worker, whose own is ``.../pytest-N/popen-gwK``; the base
    temp dir itself without xdist). Whatever builds into it must take a file lock."""
    base = factory.getbasetemp()
    if hasattr(config, "workerinput"):
        base = base.parent
    path = base / name
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytest run inside a test (pytester, a child process) sees the environment a user's
    session would, not the outer suite's xdist worker it happens to run on."""
    for name in XDIST_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """One model cache for the whole test session, shared by its xdist workers: models
    build once (the reference backend builds under a file lock; the others wait, then reuse)."""
    return shared_dir(tmp_path_factory, pytestconfig, "mlperf-cache")


RunMlperf = Callable[..., pytest.RunResult]


@pytest.fixture
def run_mlperf(pytester: pytest.Pytester, model_cache: Path) -> RunMlperf:
    """Run pytest in the pytester directory with the tiny benchmark available."""
    pytester.makeconftest(TINY_CONFTEST)

    def run(*args: str, subprocess: bool = False) -> pytest.RunResult:
        full = [f"--mlperf-cache-dir={model_cache}", "-p", "no:randomly", *args]
        if subprocess:
            return pytester.runpytest_subprocess(*full)
        return pytester.runpytest(*full)

    return run


def load_results(root: Path) -> dict[str, Any]:
    """The single results.json under ``root/mlperf-results``."""
    found = sorted((root / "mlperf-results").glob("*/results.json"))
    assert len(found) == 1, found
    data: dict[str, Any] = json.loads(found[0].read_text())
    return data


def perf_record(
    benchmark: str, scenario: str, name: str, value: float | None, unit: str, **extra: Any
) -> dict[str, Any]:
    """A performance record of a fast reference-cpu run with the fields comparisons read
    (``extra`` overrides or adds)."""
    return {
        "benchmark": benchmark,
        "scenario": scenario,
        "mode": "performance",
        "config_ver": "default",
        "system": "reference-cpu",
        "fast": True,
        "metric": {"name": name, "value": value, "unit": unit},
        **extra,
    }


# -- the suite under pytest-xdist (pyproject.toml: -n auto --dist loadgroup) -----------------
#: Modules whose tests run on one xdist worker, one after another, as (group, why): a
#: group's modules share that worker. Every other test goes to whichever worker is free.
#: LoadGen measurements need no entry: the plugin (and tests/loadgen_runs.py) take the
#: host-wide CPU lock, so two never overlap.
ONE_WORKER = {
    # one Docker user at a time, as in one process: the stand-in tests (hangs, timeouts,
    # engine builds) failed beside another module's containers on the same engine
    "test_nvidia_docker.py": ("docker", "the stand-in harness in Docker, its hang/timeout cases"),
    "test_secrets.py": ("docker", "the stand-in harness in Docker"),
    "test_two_engines.py": ("docker", "the second dockerd at one fixed socket and data root"),
    "test_slurm.py": ("slurm", "the n1-n3 Slurm cluster: one fleet at a time"),
    "test_parser.py": ("test_parser", "its module fixture runs every LoadGen case once"),
    "test_fuzz_logs.py": ("test_fuzz_logs", "its module fixture runs real LoadGen logs"),
    "test_report_html.py": ("test_report_html", "its module fixture runs Server and Offline"),
    "test_model_cache.py": ("test_model_cache", "its module fixture builds both models"),
    "test_packaging.py": ("test_packaging", "its module fixture builds the wheel"),
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of each ``ONE_WORKER`` module with its ``xdist_group``: before
    pytest-xdist's own hook, which reads the mark under ``--dist loadgroup``."""
    for item in items:
        if item.path.name in ONE_WORKER:
            group, _why = ONE_WORKER[item.path.name]
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers more than CPUs (``PYTEST_XDIST_AUTO_NUM_WORKERS`` wins),
    since many tests wait (on a child pytest, Docker, Slurm, the CPU lock) more than they
    compute."""
    given = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").strip()
    if given.isdigit():
        return int(given)
    return len(os.sched_getaffinity(0)) + 2
