"""Builders for what many tests write: a thresholds file, a pytest child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def limit(benchmark: str, scenario: str, **bound: Any) -> dict[str, Any]:
    """One thresholds entry: ``bound`` names the limit (``min_samples_per_second=1``,
    ``max_latency_ms=5000``, ``expected_latency_ms=…``, ``tolerance=…``, ``config_ver=…``)."""
    return {"benchmark": benchmark, "scenario": scenario, **bound}


def thresholds_json(*entries: Mapping[str, Any], system: str = "*", **fields: Any) -> str:
    """The text of a thresholds file (schema version 1) holding ``entries``; ``fields`` adds
    file-level fields (``tolerance=0.9``)."""
    body = {"schema_version": 1, "system": system, **fields, "thresholds": list(entries)}
    return json.dumps(body)


def write_thresholds(
    path: Path, *entries: Mapping[str, Any], system: str = "*", **fields: Any
) -> Path:
    """Write a thresholds file at ``path`` (see :func:`thresholds_json`); ``path``."""
    path.write_text(thresholds_json(*entries, system=system, **fields))
    return path


def pytest_process(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """``python -m pytest -p no:cacheprovider *args`` started in ``cwd`` (not waited for),
    stdout and stderr merged into one text pipe; ``env`` adds to (or overrides) this
    process's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
