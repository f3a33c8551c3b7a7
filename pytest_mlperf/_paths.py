"""Locate the data directories shipped with the package (wheel) or the source checkout."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the directory holding ``benchmarks`` or ``schemas`` data.

    A wheel carries them under ``pytest_mlperf/_data/``; a source checkout (editable
    install) keeps them beside the package.
    """
    for candidate in (_HERE / "_data" / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pytest-mlperf data directory {name!r} not found next to {_HERE}")
