"""Ctrl-C and SIGTERM mid-run: the running item is recorded as interrupted, nothing finished is lost."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.builders import pytest_process
from tests.conftest import TINY_CONFTEST


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_keeps_finished_items(
    pytester: pytest.Pytester, model_cache: Path, sig: signal.Signals
) -> None:
    pytester.makeconftest(TINY_CONFTEST)
    pytester.makepyfile(
        test_long="""
def test_a_short_run(mlperf_run):
    mlperf_run("tiny", "Offline", fast=True)

def test_b_long_run(mlperf_run):
    mlperf_run("tiny", "SingleStream", fast=True, min_duration_ms=8000)
"""
    )
    proc = pytest_process(
        pytester.path,
        f"--mlperf-cache-dir={model_cache}",
        f"--mlperf-save-baseline={pytester.path / 'base.json'}",
    )
    # generous: on a busy machine the child may first wait for the CPU lock
    deadline = time.monotonic() + 600
    results = None
    while (
        time.monotonic() < deadline
    ):  # wait until the Offline item is recorded and the long run started
        found = list(pytester.path.glob("mlperf-results/*/results.json"))
        if found and len(json.loads(found[0].read_text())["items"]) == 1:
            results = found[0]
            break
        time.sleep(0.2)
    assert results is not None, "the first item never finished"
    time.sleep(1.5)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "INTERNALERROR" not in out
    items = json.loads(results.read_text())["items"]
    assert [i["verdict"]["outcome"] for i in items] == ["passed", "interrupted"]
    assert items[1]["nodeid"] == "test_long.py::test_b_long_run"
    assert items[1]["fast"] is True  # the record says how the interrupted run was asked for
    data = json.loads(results.read_text())
    assert data["finished"]  # sessionfinish still ran
    # issue 26 point 3: an interrupted session never replaces a baseline, and says why
    assert not (pytester.path / "base.json").exists()
    assert "baseline NOT saved to" in out and "the session was interrupted" in out

    # the default history store keeps the session, never as good (judged against)
    from pytest_mlperf.history.store import open_store

    with open_store(pytester.path / "mlperf-results" / "history.sqlite", create=False) as store:
        (session,) = store.sessions()
        assert session.interrupted and not session.good
        assert not store.records("tiny-99/Offline/performance", None, None)  # none good


def test_a_session_cut_short_by_pytest_exit_saves_no_baseline(
    run_mlperf: Callable[..., pytest.RunResult], pytester: pytest.Pytester
) -> None:
    """Issue 26 point 3: nothing failed, but the session did not run everything."""
    pytester.makepyfile(
        test_cut="""
import pytest

def test_a_run(mlperf_run):
    mlperf_run("tiny", "Offline", fast=True)

def test_b_stop():
    pytest.exit("enough", returncode=0)

def test_c_never_runs():
    pass
"""
    )
    target = pytester.path / "base.json"
    target.write_text("{}")  # an earlier baseline: kept as it is
    result = run_mlperf(f"--mlperf-save-baseline={target}")
    assert target.read_text() == "{}"
    result.stdout.fnmatch_lines(
        ["*baseline NOT saved to *base.json: 1 of 3 selected test(s) did not run; *"]
    )
    # ... and the history keeps it, never as good: the same rule as the baseline
    from pytest_mlperf.history.store import open_store

    with open_store(pytester.path / "mlperf-results" / "history.sqlite", create=False) as store:
        (session,) = store.sessions()
        assert not session.good
    ok = run_mlperf(f"--mlperf-save-baseline={target}", "-k", "test_a_run")
    ok.stdout.fnmatch_lines(["*baseline saved: *base.json (1 items)*"])
