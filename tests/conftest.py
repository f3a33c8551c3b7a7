"""Shared helpers: a model cache shared by every pytester run, and the tiny test benchmark."""

from __future__ import annotations

import importlib
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


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the whole test session (models build once)."""
    return tmp_path_factory.mktemp("mlperf-cache")


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
