"""Bounded, strict reading of LoadGen's log files, line by line.

Whatever the bytes, the reader answers with lines or a :class:`ParseError` naming the file
and line: memory stays bounded by :data:`MAX_LINE_BYTES` per line, and JSON that is nested
too deep, holds non-finite numbers or integers beyond 64 bits is refused, never a traceback.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from pytest_mlperf.errors import ParseError
from pytest_mlperf.jsonstrict import loads as strict_json

#: The longest line read. LoadGen's longest (``loaded_qsl_set`` of DLRM) is about 2.2 MB.
MAX_LINE_BYTES = 16 << 20


def check_regular_file(path: Path) -> None:
    """Raise :class:`ParseError` unless ``path`` is a regular file (not a link, dir, FIFO)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise ParseError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(mode):
        raise ParseError(f"{path}: is a symbolic link, not a log LoadGen wrote")
    if not stat.S_ISREG(mode):
        raise ParseError(f"{path}: is not a regular file")


def iter_lines(path: Path, max_line: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_no, line)`` without the line ending; a line over ``max_line`` bytes
    or an unreadable file raises :class:`ParseError` naming it."""
    check_regular_file(path)
    try:
        with path.open("rb") as fh:
            line_no = 0
            while True:
                raw = fh.readline(max_line + 1)
                if not raw:
                    return
                line_no += 1
                if len(raw) > max_line:
                    raise ParseError(
                        f"{path.name}:{line_no}: line longer than {max_line} bytes "
                        "(not a LoadGen log line)"
                    )
                yield line_no, raw.rstrip(b"\r\n")
    except OSError as exc:
        raise ParseError(f"{path}: cannot read: {exc.strerror or exc}") from exc


__all__ = ["MAX_LINE_BYTES", "check_regular_file", "iter_lines", "strict_json"]
