"""Backends run one benchmark×scenario×mode and leave LoadGen logs; they never judge."""

from __future__ import annotations

from collections.abc import Callable

#: The backends built into pytest-mlperf (plugins add theirs through a hook).
BUILTIN_BACKENDS = ("reference", "nvidia")


def auto_backend(harness_dir: object | None, has_gpus: Callable[[], bool]) -> tuple[str, str]:
    """What ``--mlperf-backend=auto`` means, and why: nvidia when a harness dir is set and
    the host shows GPUs (``has_gpus`` is asked only then), else reference."""
    if harness_dir is None:
        return "reference", "no --mlperf-harness-dir"
    if has_gpus():
        return "nvidia", "harness dir set and GPUs found"
    return "reference", "no GPU found"
