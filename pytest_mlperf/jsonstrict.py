"""JSON as pytest-mlperf reads it: finite numbers only, bounded integers and nesting.

``json.loads`` accepts ``NaN``, ``Infinity`` and ``1e309`` (read as infinity), integers of
any length and nesting up to a RecursionError; a threshold of ``Infinity`` silently turns a
gate off. :func:`loads` refuses all of them with a ValueError saying which.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: Integers we read are 64-bit at most (LoadGen's seeds reach 2**64 - 1): 20 digits.
MAX_INT_DIGITS = 20


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} (only finite numbers are accepted)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range (only finite numbers are accepted)")
    return value


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"integer of {digits} digits (at most {MAX_INT_DIGITS} are accepted)")
    return int(text)


def loads(text: str) -> Any:
    """Parse ``text``; raise ValueError for non-finite numbers, huge integers, deep nesting
    or anything that is not JSON."""
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def load_file(path: Path) -> Any:
    """:func:`loads` of a UTF-8 file (OSError and UnicodeDecodeError pass through)."""
    return loads(path.read_text(encoding="utf-8"))
