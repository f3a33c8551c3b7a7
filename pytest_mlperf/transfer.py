"""Item logs from a worker node to the controller over the xdist channel (pytest-free).

A real cluster may share no filesystem with the controller, so a fleet worker writes its
item directories under a node-local scratch directory, packs each item's files into its
test report (base64 text: the report stays JSON-safe) and removes the scratch directory at
the end of its session. Files are bounded: each at most ``MAX_FILE_BYTES`` and an item at
most ``MAX_ITEM_BYTES`` in all, smallest first (the summary and detail logs always fit);
what does not fit stays on the node and is listed in the record's ``transfer.left``.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_mlperf.results.store import safe_part

MAX_FILE_BYTES = 8 << 20
MAX_ITEM_BYTES = 32 << 20


def node_scratch(run_id: str, node: str, worker: str) -> Path:
    """A fleet worker's results dir on its node (``$MLPERF_NODE_SCRATCH`` or the temp dir)."""
    base = Path(os.environ.get("MLPERF_NODE_SCRATCH") or tempfile.gettempdir())
    return base / f"pytest-mlperf-{safe_part(run_id)}-{safe_part(node)}-{safe_part(worker)}"


def pack_item(
    root: Path,
    item_dir: Path,
    max_file: int = MAX_FILE_BYTES,
    max_item: int = MAX_ITEM_BYTES,
) -> dict[str, Any]:
    """The files under ``item_dir`` (relative to the run ``root``) as a transfer payload."""
    files: list[tuple[int, Path]] = []
    if item_dir.is_dir():
        for path in sorted(item_dir.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files.append((path.stat().st_size, path))
    sent: list[dict[str, str]] = []
    left: list[dict[str, Any]] = []
    total = 0
    for size, path in sorted(files, key=lambda f: (f[0], str(f[1]))):
        rel = path.relative_to(root).as_posix()
        if size > max_file or total + size > max_item:
            why = f"over {max_file} bytes" if size > max_file else f"item over {max_item} bytes"
            left.append({"path": rel, "bytes": size, "why": why})
            continue
        total += size
        sent.append({"path": rel, "data": base64.b64encode(path.read_bytes()).decode("ascii")})
    return {"files": sent, "bytes": total, "left": left}


def unpack_item(dest_root: Path, payload: Mapping[str, Any]) -> list[Path]:
    """Write a payload's files under ``dest_root``; paths cannot escape it."""
    written = []
    for entry in payload.get("files", []):
        parts = [safe_part(p) for p in str(entry["path"]).split("/") if p not in ("", ".", "..")]
        if not parts:
            continue
        target = dest_root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(base64.b64decode(entry["data"]))
        os.replace(tmp, target)
        written.append(target)
    return written


def moved_path(path: str, worker_root: str, dest_root: Path) -> str:
    """A worker-side path under ``worker_root`` as the controller's copy under ``dest_root``."""
    try:
        rel = Path(path).relative_to(worker_root)
    except ValueError:
        return path
    return str(dest_root.joinpath(*(safe_part(p) for p in rel.parts)))


def relocate_record(
    record: dict[str, Any], worker_root: str, dest_root: Path, payload: Mapping[str, Any]
) -> None:
    """Point the record's log paths at the controller's copies; say what was not sent.

    Idempotent: the paths on the node are kept in ``transfer.node_paths`` and read from
    there when the record was relocated before (by the worker, for its failure text).
    """
    node_paths = (record.get("transfer") or {}).get("node_paths") or {
        "log_dir": record.get("log_dir"),
        "item_dir": record.get("item_dir"),
    }
    for key in ("log_dir", "item_dir"):
        if isinstance(node_paths.get(key), str):
            record[key] = moved_path(node_paths[key], worker_root, dest_root)
    record["transfer"] = {
        "files": len(payload.get("files", [])),
        "bytes": payload.get("bytes", 0),
        "left": list(payload.get("left", [])),
        "node_paths": node_paths,
    }


def payload_size(payloads: Sequence[Mapping[str, Any]]) -> int:
    """Bytes of file data in payloads (before base64)."""
    return sum(int(p.get("bytes", 0)) for p in payloads)
