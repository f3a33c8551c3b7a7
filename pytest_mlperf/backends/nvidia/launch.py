"""The harness container's launch: its name, its build directory, the user it runs as and
the identities of its mount sources; the Docker client it is launched through."""

from __future__ import annotations

import getpass
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_mlperf.backends.nvidia.ab import instance_key
from pytest_mlperf.errors import BackendError


def docker_client(base_url: str | None) -> Any:
    """A Docker client for ``base_url`` (``--mlperf-docker-host``), else the environment's."""
    import docker

    return docker.DockerClient(base_url=base_url) if base_url else docker.from_env()


def uid_gid() -> str | None:
    """``uid:gid`` of the invoking user (None where the OS has no such ids)."""
    getuid, getgid = getattr(os, "getuid", None), getattr(os, "getgid", None)
    return f"{getuid()}:{getgid()}" if getuid and getgid else None


def mount_ids(paths: Sequence[Path]) -> dict[str, str]:
    """Each mount source's device and inode: they change when the directory is re-created."""
    ids = {}
    for path in paths:
        st = path.resolve().stat()
        ids[str(path.resolve())] = f"{st.st_dev}:{st.st_ino}"
    return ids


def _user() -> str:
    try:
        return "".join(c for c in getpass.getuser() if c.isalnum()) or "user"
    except (KeyError, OSError):
        return "user"


def container_name(
    harness_dir: Path, gpus: Sequence[str] | None, split: str, image: str | None = None
) -> str:
    """``pytest-mlperf-<user>-<checkout hash>`` (with a given ``image``: of checkout and
    image, :func:`~pytest_mlperf.backends.nvidia.ab.instance_key`), and the devices' hash
    for a split worker."""
    name = f"pytest-mlperf-{_user()}-{instance_key(harness_dir, image, 8)}"
    if split != "none" and gpus is not None:
        name += "-" + hashlib.sha256(",".join(gpus).encode()).hexdigest()[:6]
    return name


def build_dir(harness_dir: Path, scratch: Path, local: bool, image: str | None = None) -> Path:
    """``<scratch>/.pytest-mlperf/build/<checkout hash>`` (with a given ``image``: of
    checkout and image), and the mount point for it.

    The mount point is the checkout's ``build/`` (what plain ``make`` creates too): made
    here as the invoking user when absent (``local``: on this machine's engine), empty, so
    ``git status`` shows nothing and the engine does not create it root-owned; a user's own
    ``build/`` is left as it is.
    """
    build = scratch.resolve() / ".pytest-mlperf" / "build" / instance_key(harness_dir, image, 12)
    build.mkdir(parents=True, exist_ok=True)
    mount_point = harness_dir / "build"
    if mount_point.exists() and not mount_point.is_dir():
        raise BackendError(f"{mount_point} exists and is not a directory (the harness's build/)")
    if local:
        mount_point.mkdir(exist_ok=True)
    return build
