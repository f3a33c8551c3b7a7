"""``--mlperf-ab``: what each side was. Each side's backend identity (image, checkout,
threads: its ``ab_identity()``) and its fingerprint (:mod:`pytest_mlperf.history.fingerprint`,
from its own host record) go into the record's ``ab``, with the fingerprint fields the two
sides differ in. No pytest here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pytest_mlperf import __version__
from pytest_mlperf.backends.ab import ab_identity
from pytest_mlperf.backends.base import Backend
from pytest_mlperf.history.fingerprint import FIELDS, fingerprint, fingerprint_id

SIDE_KEYS = (("A", "baseline"), ("B", "candidate"))


def add_sides(
    ab: dict[str, Any], backend_of: Callable[[str], Backend], fields: Mapping[str, Any]
) -> dict[str, Any]:
    """Add ``identity``, ``fingerprint`` and ``fingerprint_id`` to both sides of ``ab`` (the
    record's ``ab``), and ``differs``: ``field: A's, B's`` per fingerprint field that is not
    the same. ``backend_of``: the side's prepared backend; ``fields``: the item's record
    fields the fingerprint reads (scenario, config_ver, fast)."""
    prints: dict[str, dict[str, Any]] = {}
    for side, key in SIDE_KEYS:
        backend = backend_of(side)
        options = ab[key].get("options") or {}
        record = {
            "plugin_version": __version__,
            **fields,
            "backend": backend.name,
            "system": backend.system_name(),
            "config_ver": options.get("config_ver", fields.get("config_ver")),
        }
        prints[side] = fingerprint(record, backend.describe())
        ab[key]["identity"] = ab_identity(backend)
        ab[key]["fingerprint"] = prints[side]
        ab[key]["fingerprint_id"] = fingerprint_id(prints[side])
    ab["differs"] = [
        f"{name}: {prints['A'].get(name)} (A), {prints['B'].get(name)} (B)"
        for name in FIELDS
        if prints["A"].get(name) != prints["B"].get(name)
    ]
    return ab
