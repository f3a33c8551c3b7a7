"""The run options the nvidia backend is made from, declared once: ``config.RunConfig`` is a
:class:`HarnessOptions` (``parse_run_config`` fills every field from ``config.OPTIONS``) and
so is the backend's ``NvidiaSettings``. The defaults here serve a backend made directly
(tests, bench scripts)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class HarnessOptions:
    """``--mlperf-results-dir``, ``--mlperf-system`` and the harness's own options."""

    results_dir: Path
    system: str | None = None
    harness_dir: Path | None = None
    scratch_path: Path | None = None
    image: str | None = None
    container: str | None = None
    provision: str = "off"
    #: GPU indexes or UUIDs; ``("all",)`` every GPU; None: a container without GPUs
    devices: tuple[str, ...] | None = ("all",)
    timeout_s: float | None = None
    cuda_runfile: Path | None = None


def harness_options(options: HarnessOptions) -> dict[str, Any]:
    """The :class:`HarnessOptions` fields of ``options`` (a RunConfig, say), by name."""
    return {f.name: getattr(options, f.name) for f in fields(HarnessOptions)}
