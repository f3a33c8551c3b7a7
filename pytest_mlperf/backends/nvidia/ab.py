"""The nvidia backend under ``--mlperf-ab``: what a side may set (another harness image,
another checkout) and what keeps two sides apart on one host. No pytest here.

Each side is its own :class:`~pytest_mlperf.backends.nvidia.NvidiaBackend`, prepared once:
its image (built from its checkout, or used as given), its container, its build directory
(engines, harness binaries, link_dirs) under the scratch path. A container and a build
directory belong to one checkout and, with ``--mlperf-image``, one image: two sides never
share, so neither rebuilds or overwrites the other's engines, and the user's checkout only
gets the empty ``build/`` mount point it gets today.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pytest_mlperf.backends.variants import HARNESS_DIR, IMAGE

#: the keys a side of ``--mlperf-ab`` may set on the nvidia backend
AB_KEYS = (IMAGE, HARNESS_DIR)
#: what the record and the report show of each side (``ab_identity``)
IDENTITY_FIELDS = (
    "image",
    "image_id",
    "image_digests",
    "harness_commit",
    "tensorrt_version",
    "container",
    "harness_build_dir",
)


def instance_key(harness_dir: Path, image: str | None, length: int) -> str:
    """``length`` hex digits naming a checkout's container and build directory: its path's
    hash, as before; with a given image (``--mlperf-image``) path and image together, so
    each image gets its own container and its own engines."""
    text = str(harness_dir.resolve()) + (f"\0{image}" if image else "")
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def identity(backend: Any) -> dict[str, Any]:
    """A side as its prepared ``NvidiaBackend`` knows it (its ``ab_identity()``; typed Any:
    the backend imports this module): the checkout and :data:`IDENTITY_FIELDS` of its
    ``info``."""
    harness_dir = backend.settings.harness_dir
    out: dict[str, Any] = {"harness_dir": str(harness_dir) if harness_dir else None}
    out.update({key: backend.info.get(key) for key in IDENTITY_FIELDS})
    return out
