"""The end of a session: whether it was cut short, and the baseline and the history record
it leaves (neither kept as good when it was)."""

from __future__ import annotations

import pytest

from pytest_mlperf import __version__
from pytest_mlperf.errors import MlperfError
from pytest_mlperf.history.results_file import save_baseline
from pytest_mlperf.results.index import RunIndex


def stopped_early(session: pytest.Session, exitstatus: int, reported: set[str]) -> str | None:
    """Why the session did not run to its end (None: it did): Ctrl-C, SIGTERM,
    ``pytest.exit``, ``-x``/``--maxfail``, or items that never reported (``reported``: the
    node ids a report arrived for)."""
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "the session was interrupted (Ctrl-C, SIGTERM or pytest.exit)"
    for why in (session.shouldstop, session.shouldfail):
        if why:
            return f"the session stopped early ({why})"
    not_run = [i for i in session.items if i.nodeid not in reported]
    if not_run:
        return f"{len(not_run)} of {len(session.items)} selected test(s) did not run"
    return None


def keep_run(
    index: RunIndex, session: pytest.Session, stopped: str | None
) -> tuple[str | None, str | None]:
    """Save the baseline (``--mlperf-save-baseline``) and the history record, with one
    answer to "was the session cut short?" (``stopped``); what each said (None: not asked)."""
    rc = index.run_config
    baseline_message = None
    if rc.save_baseline is not None:
        _, baseline_message = save_baseline(
            index.store.index_path, index.records, rc.save_baseline, stopped=stopped
        )
    return baseline_message, save_history(index, session, stopped)


def save_history(index: RunIndex, session: pytest.Session, stopped: str | None) -> str | None:
    """Add the session to the history store (never as good when ``stopped`` says why it
    was cut short); a store the user named that cannot take it fails the session (exit
    1), the default one only says so."""
    from pytest_mlperf.history.ingest import save_session

    h = index.run_config.history
    if h is None:
        return None
    try:
        return save_session(
            h.location,
            index.records,
            index.host,
            run_id=index.store.run_id,
            ref=h.ref,
            commit=h.commit,
            started=index.started,
            interrupted=stopped is not None,
            backend=index.backend_name,
            system=index.records[-1]["system"],
            plugin_version=__version__,
            source=str(index.store.index_path),
        )
    except MlperfError as exc:
        if h.judge and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return f"history NOT saved: {exc}"
