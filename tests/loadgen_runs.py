"""Produce real LoadGen logs with the reference backend and the tiny benchmark."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pytest_mlperf.backends.base import RunRequest, no_progress
from pytest_mlperf.backends.reference import ReferenceBackend
from pytest_mlperf.catalog import Catalog, default_dirs, load_catalog
from pytest_mlperf.placement import DeviceLock, Placement, device_keys
from tests.conftest import TINY_DIR


def tiny_catalog() -> Catalog:
    """The shipped benchmarks plus the tiny test one."""
    return load_catalog([*default_dirs(), TINY_DIR])


def run_tiny(
    backend: ReferenceBackend,
    outdir: Path,
    scenario: str,
    mode: str = "performance",
    fast: bool = True,
    overrides: Mapping[str, float] | None = None,
    variant: str = "tiny-99",
    compliance: str | None = None,
    audit: Mapping[str, int] | None = None,
) -> Path:
    """Run one LoadGen test of the tiny benchmark into ``outdir``."""
    catalog = tiny_catalog()
    outdir.mkdir(parents=True, exist_ok=True)
    request = RunRequest(
        benchmark=catalog.benchmark(variant),
        variant=catalog.variant(variant),
        scenario=scenario,
        mode=mode,
        config_ver="default",
        fast=fast,
        outdir=outdir,
        overrides=dict(overrides or {}),
        compliance=compliance,
        audit=audit,
    )
    # the plugin's own host-wide lock of the CPUs: a run here never shares them with a
    # measurement of another xdist worker (or of another session) on this host
    lock = DeviceLock(device_keys(backend, Placement()), f"pid {os.getpid()}, tests.run_tiny")
    lock.acquire(lambda _line: None)
    try:
        backend.run(request, no_progress)
    finally:
        lock.release()
    return outdir
