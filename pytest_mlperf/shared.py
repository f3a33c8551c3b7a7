"""Prepare once per host across xdist workers and concurrent sessions: a file lock and a state file."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from pytest_mlperf.errors import BackendError, MlperfError
from pytest_mlperf.results.store import atomic_write_json


class SharedPreparation:
    """Serialises backend preparation on one host; remembers a failure for the whole run.

    The lock lives in the cache directory (shared by every session on the machine), so the
    first process does the work and the others wait, then find it done (image, container,
    staged steps and models are all reused). The state file lives in the run directory: a
    failed preparation is reported once and every worker's items fail with that reason.
    """

    def __init__(self, lock_path: Path, run_dir: Path, host_key: str) -> None:
        self.lock_path = lock_path
        self.state_path = run_dir / ".state" / f"prepare-{host_key}.json"
        self.log_path = run_dir / ".state" / "preparations.jsonl"

    def run(self, worker: str, prepare: Callable[[], list[str]], serial: bool = True) -> None:
        """Run ``prepare`` (returns the work it did), unless it already failed in this run.

        ``serial``: under the host lock (a backend whose preparation is per process and
        shares only what it locks itself says False).
        """
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(
                f"cannot create the lock directory {self.lock_path.parent}: {exc}"
            ) from exc
        with FileLock(str(self.lock_path)) if serial else contextlib.nullcontext():
            state = self._state()
            if state is not None and state.get("status") == "failed":
                raise BackendError(f"{state['error']} (preparation failed in {state['worker']})")
            start = time.perf_counter()
            try:
                work = prepare()
            except MlperfError as exc:
                atomic_write_json(
                    self.state_path, {"status": "failed", "worker": worker, "error": str(exc)}
                )
                raise
            self.log(worker, work, round(time.perf_counter() - start, 3))
            atomic_write_json(self.state_path, {"status": "ok", "worker": worker})

    def log(self, worker: str, work: list[str], seconds: float | None) -> None:
        """Append one line to the run's preparation log (``seconds`` None: work done later)."""
        phase = "prepare" if seconds is not None else "later"
        entry = {"worker": worker, "seconds": seconds, "work": work, "phase": phase}
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
        except OSError as exc:
            raise BackendError(f"cannot write {self.log_path}: {exc.strerror or exc}") from exc

    def _state(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def read_preparations(run_dir: Path) -> list[dict[str, Any]]:
    """Every preparation of the run, in order (one line per process that prepared)."""
    path = run_dir / ".state" / "preparations.jsonl"
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries
