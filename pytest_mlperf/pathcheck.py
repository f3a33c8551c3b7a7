"""Paths from options and ini values, checked before anything runs.

A path the operating system cannot take (a NUL byte, a component over ``NAME_MAX`` bytes,
more than ``PATH_MAX`` bytes in all) would otherwise surface as a traceback or an
INTERNALERROR long after the option was read.
"""

from __future__ import annotations

import os
from pathlib import Path

from pytest_mlperf.errors import ConfigError

#: Linux's limits (``NAME_MAX``, ``PATH_MAX``), in bytes of the file system encoding.
NAME_MAX = 255
PATH_MAX = 4096


def path_problem(value: str | os.PathLike[str]) -> str | None:
    """Why ``value`` cannot be a path, or None."""
    text = os.fspath(value)
    if "\0" in text:
        return "contains a NUL byte"
    try:
        encoded = os.fsencode(text)
    except UnicodeError:
        return "cannot be encoded for the file system"
    if len(encoded) >= PATH_MAX:
        return f"is {len(encoded)} bytes long (the limit is {PATH_MAX - 1})"
    for part in encoded.split(b"/"):
        if len(part) > NAME_MAX:
            shown = part[:40].decode(errors="replace")
            return f"has a component of {len(part)} bytes ({shown!r}...; the limit is {NAME_MAX})"
    return None


def checked_path(value: str | os.PathLike[str], option: str) -> Path:
    """``Path(value)``, or a :class:`ConfigError` naming ``option`` and the problem."""
    problem = path_problem(value)
    if problem is not None:
        shown = os.fspath(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ConfigError(f"{option}: the path {shown!r} {problem}")
    return Path(value)
