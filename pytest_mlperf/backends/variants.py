"""What a side of ``--mlperf-ab`` may set, as each backend declares it.

A backend class lists its :class:`AbKey` objects in its ``ab_keys`` attribute (the
reference backend: ``threads``, ``config_ver``; the nvidia backend: ``image``,
``harness_dir``); :func:`pytest_mlperf.backends.ab.ab_keys` looks them up by backend name.
A key that changes the backend itself (``own_backend``) is the session option of the same
name (a ``RunConfig`` field): a side that sets one gets a backend of its own, made from the
session's options with that one replaced and prepared once. No pytest here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.catalog import CONFIG_VERS, Variant
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.pathcheck import checked_path


@dataclass(frozen=True)
class AbContext:
    """What a value is checked against: the CPUs this process may use, the session's
    variants, the directory a relative path is taken from."""

    cpus: int
    variants: Sequence[Variant] = ()
    cwd: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True)
class AbKey:
    """One key a side may set.

    ``parse`` turns the text into the value, or raises :class:`ValueError` with what
    follows ``<key>=<value> in the <side> side`` in the usage error (e.g. `` is not a
    directory``)."""

    name: str
    parse: Callable[[str, AbContext], Any]
    own_backend: bool
    help: str


def _threads(value: str, ctx: AbContext) -> int:
    if not value.isdigit() or not 1 <= int(value) <= ctx.cpus:
        raise ValueError(f" is not a whole number of threads; valid: 1 to {ctx.cpus}")
    return int(value)


def _config_ver(value: str, ctx: AbContext) -> str:
    allowed = [c for c in CONFIG_VERS if all(c in v.config_vers for v in ctx.variants)]
    if value not in allowed:
        names = ", ".join(v.name for v in ctx.variants)
        raise ValueError(f"; valid for {names}: {', '.join(allowed) or 'none'}")
    return value


#: a Docker image reference: [registry[:port]/]name[:tag][@digest], lower-case path parts
_IMAGE = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?$"
)


def _image(value: str, _ctx: AbContext) -> str:
    if not _IMAGE.match(value):
        raise ValueError(
            " is not a Docker image reference; valid: [registry/]name[:tag][@sha256:digest], "
            "e.g. mlperf-inference:v4.1-a"
        )
    return value


def _harness_dir(value: str, ctx: AbContext) -> Path:
    try:
        path = checked_path(value, "harness_dir").expanduser()
    except ConfigError as exc:
        raise ValueError(f": {exc}") from None
    path = path if path.is_absolute() else ctx.cwd / path
    if not path.is_dir():
        raise ValueError(f" is not a directory (a closed/NVIDIA harness checkout): {path}")
    return path


THREADS = AbKey("threads", _threads, True, "ONNX Runtime threads (--mlperf-threads)")
CONFIG_VER = AbKey("config_ver", _config_ver, False, "the items' config_ver (--mlperf-config-ver)")
IMAGE = AbKey("image", _image, True, "the harness image (--mlperf-image), used as given")
HARNESS_DIR = AbKey(
    "harness_dir", _harness_dir, True, "the harness checkout (--mlperf-harness-dir)"
)
#: every key any built-in backend declares
ALL_KEYS = (THREADS, CONFIG_VER, IMAGE, HARNESS_DIR)
#: the keys that give a side a backend of its own
BACKEND_KEYS = tuple(k.name for k in ALL_KEYS if k.own_backend)
