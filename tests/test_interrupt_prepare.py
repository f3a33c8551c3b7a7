"""SIGTERM while the backend prepares (model build, calibration): the item that was about to
run is recorded as interrupted in results.json, and the session still finishes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.builders import pytest_process
from tests.conftest import TINY_CONFTEST

# Preparation that announces itself and then takes long: the signal lands inside it.
SLOW_PREPARE = """
import time
from pathlib import Path
from pytest_mlperf.backends.reference import ReferenceBackend

def _slow(self, plan, progress):
    Path("preparing").write_text("now")
    time.sleep(120)

ReferenceBackend.prepare = _slow
"""


def test_sigterm_during_preparation_records_the_item(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makeconftest(TINY_CONFTEST + SLOW_PREPARE)
    proc = pytest_process(
        pytester.path,
        "-p",
        "no:randomly",
        f"--mlperf-cache-dir={tmp_path / 'cache'}",
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        "--junitxml=junit.xml",
    )
    marker = pytester.path / "preparing"
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate(timeout=30)[0]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "INTERNALERROR" not in out and "Traceback" not in out
    found = list(pytester.path.glob("mlperf-results/*/results.json"))
    assert len(found) == 1, out
    data = json.loads(found[0].read_text())
    assert [i["verdict"]["outcome"] for i in data["items"]] == ["interrupted"], data["items"]
    assert "tiny-99" in data["items"][0]["nodeid"]
    assert data["items"][0]["errors"] == ["BackendError: interrupted (Ctrl-C or SIGTERM)"]
