"""``--mlperf-history*``: where the store is, which ref a session files under and is judged
against, and how many records it is judged against."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_mlperf.errors import ConfigError
from pytest_mlperf.history.stats import DEFAULT_MIN_SAMPLES, DEFAULT_SIGNIFICANCE, DEFAULT_WINDOW
from pytest_mlperf.history.store import is_postgres

#: the embedded default store, inside the results directory
DEFAULT_FILE = "history.sqlite"
OFF = ("off", "none", "no")
#: CI variables naming the branch a session runs on, first match wins
REF_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME")
#: CI variables naming a pull/merge request's target branch (what it is judged against)
BASE_VARIABLES = ("GITHUB_BASE_REF", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "CHANGE_TARGET")
COMMIT_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT")


@dataclass(frozen=True)
class HistorySettings:
    """The history settings of a session."""

    #: a SQLite path or a postgresql:// URL
    location: str
    #: True when the user named the store (``--mlperf-history``): items are judged against it
    #: and a store error fails the session; False for the embedded default (recorded only)
    judge: bool
    #: the ref this session's records are filed under
    ref: str
    #: the ref whose history items are judged against
    compare_ref: str
    commit: str | None
    window: int = DEFAULT_WINDOW
    min_samples: int = DEFAULT_MIN_SAMPLES
    significance: float = DEFAULT_SIGNIFICANCE


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out and out != "HEAD" else None


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def detect_ref(env: Mapping[str, str], cwd: Path) -> str:
    """The session's ref: CI's branch variables, else git's current branch, else ``local``."""
    return _first(env, REF_VARIABLES) or _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or "local"


def detect_compare_ref(env: Mapping[str, str], ref: str) -> str:
    """A pull/merge request's target branch, else ``ref`` itself."""
    return _first(env, BASE_VARIABLES) or ref


def detect_commit(env: Mapping[str, str], cwd: Path) -> str | None:
    """The commit under test: CI's variables, else ``git rev-parse HEAD``."""
    return _first(env, COMMIT_VARIABLES) or _git(["rev-parse", "HEAD"], cwd)


def parse_history_settings(
    location: str | None,
    ref: str | None,
    compare: str | None,
    window: str | None,
    results_dir: Path,
    rootdir: Path,
    env: Mapping[str, str] | None = None,
    significance: str | None = None,
) -> HistorySettings | None:
    """The settings from the option values (None when not given); None for ``off``."""
    env = os.environ if env is None else env
    judge = location is not None and location.strip() != ""
    text = (location or "").strip()
    if text.lower() in OFF:
        return None
    if not judge:
        text = str(results_dir / DEFAULT_FILE)
    elif not is_postgres(text):
        if "://" in text:
            raise ConfigError(
                f"--mlperf-history: {text!r} is neither a file path nor a postgresql:// URL "
                "(valid: a SQLite file path, postgresql://user@host/db, or off)"
            )
        path = Path(text).expanduser()
        text = str(path if path.is_absolute() else rootdir / path)
        if Path(text).is_dir():
            raise ConfigError(
                f"--mlperf-history: {text!r} is a directory; give a file (e.g. {text}/"
                f"{DEFAULT_FILE})"
            )
    try:
        size = int(window) if window is not None else DEFAULT_WINDOW
    except ValueError:
        size = 0
    if size < 2:
        raise ConfigError(
            f"--mlperf-history-window: {window!r} is not a whole number of records >= 2 "
            f"(default {DEFAULT_WINDOW})"
        )
    try:
        alpha = float(significance) if significance is not None else DEFAULT_SIGNIFICANCE
    except ValueError:
        alpha = -1.0
    if not 0 < alpha < 0.5:
        raise ConfigError(
            f"--mlperf-history-significance: {significance!r} is not a probability between 0 "
            f"and 0.5 (e.g. 0.01; default {DEFAULT_SIGNIFICANCE})"
        )
    the_ref = (ref or "").strip() or detect_ref(env, rootdir)
    return HistorySettings(
        location=text,
        judge=judge,
        ref=the_ref,
        compare_ref=(compare or "").strip() or detect_compare_ref(env, the_ref),
        commit=detect_commit(env, rootdir),
        window=size,
        min_samples=min(DEFAULT_MIN_SAMPLES, size),
        significance=alpha,
    )


def check_store(location: str) -> None:
    """Open (create, migrate) the store once, before anything runs: a :class:`ConfigError`
    naming it when it cannot be opened."""
    from pytest_mlperf.history.store import HistoryError, open_store

    try:
        open_store(location).close()
    except HistoryError as exc:
        raise ConfigError(f"--mlperf-history: {exc}") from exc
