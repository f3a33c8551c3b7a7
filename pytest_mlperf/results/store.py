"""Every file pytest-mlperf writes goes through here: atomic, never half-written."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_mlperf.errors import MlperfError
from pytest_mlperf.redact import redact, redact_obj

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def atomic_write_text(path: Path, text: str, *, mask_secrets: bool = True) -> None:
    """Write ``text`` (secrets masked) to ``path`` via a temporary file and ``os.replace``.

    ``mask_secrets=False`` only for files that are not reports (generated harness code).
    """
    if mask_secrets:
        text = redact(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # like the logs beside it (mkstemp makes it 0600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask, read without changing it where /proc says it (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_json(path: Path, data: Any, *, mask_secrets: bool = True) -> None:
    """Write ``data`` as indented JSON with every string's secrets masked, atomically.

    A NaN or infinity anywhere is refused (:class:`MlperfError` naming the field): Python
    would write ``NaN``/``Infinity``, which is not JSON.

    ``mask_secrets=False`` for data whose strings are masked already (results.json: its
    records are masked when built; masking them again on every rewrite costs O(items²)).
    """
    try:
        text = json.dumps(redact_obj(data) if mask_secrets else data, indent=2, allow_nan=False)
    except ValueError as exc:  # NaN/Infinity: not JSON, and never a figure we may write
        where = non_finite_field(data) or "(unknown field)"
        raise MlperfError(f"cannot write {path}: {where} is not a finite number") from exc
    text += "\n"
    try:
        atomic_write_text(path, text, mask_secrets=False)  # masked string by string above
    except OSError as exc:
        raise MlperfError(f"cannot write {path}: {exc.strerror or exc}") from exc


def non_finite_field(data: Any, where: str = "") -> str | None:
    """The path (``a/0/b``) of the first NaN or infinity in ``data``, or None."""
    if isinstance(data, float) and not math.isfinite(data):
        return where or "(top level)"
    if isinstance(data, dict):
        children: Any = data.items()
    elif isinstance(data, (list, tuple)):
        children = enumerate(data)
    else:
        return None
    for key, value in children:
        found = non_finite_field(value, f"{where}/{key}" if where else str(key))
        if found is not None:
            return found
    return None


#: An item does not start when the results file system has less than this free: LoadGen
#: would write empty or cut logs without an error of its own.
MIN_FREE_BYTES = 1 << 20


def free_space_problem(path: Path) -> str | None:
    """Why ``path``'s file system is too full for an item's logs, or None."""
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return None
    if free >= MIN_FREE_BYTES:
        return None
    return (
        f"no space left for results: {path} has {free} bytes free "
        f"(an item needs at least {MIN_FREE_BYTES} for its logs)"
    )


def unwritable_problem(path: Path) -> str | None:
    """Why the directory ``path`` (or the existing parent it would be made in) cannot be
    written, or None. Uses access(2), which reports a read-only mount even to root."""
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return None
    if os.access(existing, os.W_OK | os.X_OK):
        return None
    read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    why = "is on a read-only file system" if read_only else "is not writable (permission denied)"
    return f"{str(path)!r} cannot be written: {str(existing)!r} {why}"


def new_run_id(now: datetime | None = None) -> str:
    """A sortable run id such as ``20261124-113000-4242``."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{os.getpid()}"


def safe_part(text: str) -> str:
    """A path component that cannot escape its parent directory."""
    cleaned = _SAFE.sub("_", text).strip(".")
    return cleaned or "_"


class RunStore:
    """The results directory of one run: ``<results-dir>/<run-id>/``."""

    def __init__(self, results_dir: Path, run_id: str) -> None:
        self.root = results_dir / safe_part(run_id)
        self.run_id = run_id

    def item_dir(self, *parts: str) -> Path:
        """A new, empty ``<run>/<benchmark>/<scenario>/<mode>/`` directory.

        When that directory already exists (the same item run twice in one run), a
        numbered sibling is made instead, so no result can come from an earlier run.
        """
        base = self.root.joinpath(*(safe_part(p) for p in parts))
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            for n in range(1, 10_000):
                path = base if n == 1 else base.with_name(f"{base.name}-{n}")
                try:
                    path.mkdir()
                except FileExistsError:
                    continue
                return path
        except OSError as exc:
            raise MlperfError(f"cannot create results directory {base}: {exc}") from exc
        raise MlperfError(f"too many runs of {base} in one run directory")

    @property
    def index_path(self) -> Path:
        """``results.json`` of the run."""
        return self.root / "results.json"
