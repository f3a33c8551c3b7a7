"""The model cache's integrity: a checksum written last, verified on every use.

Each cached artefact ``<name>.onnx`` has a ``<name>.onnx.sha256`` beside it, written only
after the artefact is complete and in place. An artefact without its checksum (a build
killed between the two), or whose bytes no longer match it (truncated, garbled), is damaged:
it is rebuilt where the cache is writable, and named in a one-line error where it is not.
A complete read-only cache is used as it is, without a lock. Builds happen only under
:func:`build_lock`, so whatever a killed build left (``.quant-*`` directories, ``*.tmp``
files) can be removed by the next builder: :func:`clean_leftovers`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pytest_mlperf.errors import BackendError

SUFFIX = ".sha256"
LEFTOVER_PATTERNS = (".quant-*", "*.tmp", ".*.tmp")


def checksum_path(path: Path) -> Path:
    """Where ``path``'s checksum is kept."""
    return path.with_name(path.name + SUFFIX)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def damage(path: Path) -> str | None:
    """Why the cached ``path`` cannot be used, or None when it is complete and intact."""
    if not path.exists() and not checksum_path(path).exists():
        return "not built yet"
    try:
        if not path.is_file():
            return "missing (only its checksum is there)"
        expected = checksum_path(path).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return "has no checksum (its build was interrupted)"
    except (OSError, UnicodeDecodeError) as exc:
        return f"has an unreadable checksum ({exc})"
    try:
        actual = _digest(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if actual != expected:
        return "is damaged (its bytes do not match the checksum written when it was built)"
    return None


def writable(directory: Path) -> bool:
    """Whether files can be created in ``directory`` (False on a read-only mount)."""
    return os.access(directory, os.W_OK | os.X_OK)


def seal(path: Path) -> None:
    """Write ``path``'s checksum, atomically: the last step of every build."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(_digest(path) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, checksum_path(path))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def require_usable(path: Path, problem: str) -> None:
    """Raise a one-line :class:`BackendError` when the damaged ``path`` cannot be rebuilt."""
    if not writable(path.parent):
        raise BackendError(
            f"cached model {path} {problem}, and the cache {path.parent} is read-only: "
            "rebuild it where it is writable (or point --mlperf-cache-dir elsewhere)"
        )


def discard(path: Path) -> None:
    """Remove a damaged artefact and its checksum before it is rebuilt."""
    checksum_path(path).unlink(missing_ok=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def clean_leftovers(directory: Path) -> list[str]:
    """Remove what killed builds left in ``directory`` (only under :func:`build_lock`)."""
    removed = []
    for pattern in LEFTOVER_PATTERNS:
        for leftover in directory.glob(pattern):
            with contextlib.suppress(OSError):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
                removed.append(leftover.name)
    return removed


@contextlib.contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    """The cache's build lock, taken after removing what killed builds left; none on a
    read-only cache, where nothing can be built."""
    if not writable(directory):
        yield
        return
    from filelock import FileLock

    with FileLock(str(directory / ".build.lock")):
        clean_leftovers(directory)  # no build runs outside the lock: these are orphans
        yield
