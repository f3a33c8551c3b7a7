"""pytest-mlperf's own hooks: implement them in a conftest or plugin to extend it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_mlperf.backends.base import Backend
    from pytest_mlperf.config import RunConfig


@pytest.hookspec
def pytest_mlperf_backend_names() -> list[str]:  # type: ignore[empty-body]
    """Return the names of the backends this plugin can make (results are merged)."""


@pytest.hookspec(firstresult=True)
def pytest_mlperf_make_backend(
    name: str, run_config: RunConfig, config: pytest.Config
) -> Backend | None:
    """Return a backend for ``name``, or None to let another implementation answer."""


@pytest.hookspec(firstresult=True)
def pytest_mlperf_auto_backend(config: pytest.Config) -> str | None:
    """Return the backend name ``--mlperf-backend=auto`` means on this host."""


@pytest.hookspec
def pytest_mlperf_benchmark_dirs(config: pytest.Config) -> list[Path]:  # type: ignore[empty-body]
    """Return extra directories of benchmark ``*.json`` files (validated by schema)."""


@pytest.hookspec
def pytest_mlperf_result_ready(record: dict[str, Any], nodeid: str) -> None:
    """Called with each item's result record right after it was written."""
