"""Provenance: what produced a result, as a hash, and reuse of an identical earlier result.

The provenance ``id`` is the SHA-256 of every input that determines a run's LoadGen
settings and outcome, taken before the run: the benchmark data (the whole data file),
variant, scenario, mode, config_ver, shortened run or not, per-item overrides, backend,
system, calibration on/off, the software facts the backend reports (harness commit and
image tag and content ID (and registry digests), driver and CUDA versions, LoadGen and ONNX Runtime versions, threads, CPUs) and the
plugin version. After the run, ``settings_sha256`` records the hash of the effective
LoadGen settings the backend used (which, with calibration, depend on the machine too).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_mlperf import __version__
from pytest_mlperf.checks import Outcome

#: Backend facts (``Backend.describe()``) that identify the software a result came from.
SOFTWARE_FACTS = (
    "backend",
    "system_name",
    "harness_commit",
    "image",
    "image_id",
    "image_digests",
    "driver_version",
    "cuda_version",
    "gpu_count",
    "loadgen",
    "onnxruntime",
    "python",
    "threads",
    "cpus",
    "cpu_count",
)
#: Verdict outcomes of a result that ran to the end (and can therefore be reused).
REUSABLE_OUTCOMES = (Outcome.PASSED, Outcome.FAILED, Outcome.XFAILED, Outcome.SKIPPED)


def digest(value: Any) -> str:
    """SHA-256 of a JSON value in canonical form (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def provenance(
    *,
    benchmark_data: Mapping[str, Any],
    variant: str,
    scenario: str,
    mode: str,
    config_ver: str,
    fast: bool,
    overrides: Mapping[str, float],
    backend: str,
    system: str,
    calibrate: bool,
    host: Mapping[str, Any],
    plugin_version: str = __version__,
) -> dict[str, Any]:
    """The provenance of a run about to start (``status`` fresh until reuse says otherwise)."""
    software = {k: host[k] for k in SOFTWARE_FACTS if host.get(k) is not None}
    inputs = {
        "benchmark_sha256": digest(benchmark_data),
        "variant": variant,
        "scenario": scenario,
        "mode": mode,
        "config_ver": config_ver,
        "fast": fast,
        "overrides": dict(sorted(overrides.items())),
        "backend": backend,
        "system": system,
        "calibrate": calibrate,
        "software": software,
        "plugin_version": plugin_version,
    }
    return {"id": digest(inputs), "status": "fresh", "inputs": inputs}


def find_reusable(
    results_dir: Path, current_run: Path, parts: tuple[str, str, str], prov_id: str
) -> tuple[Path, dict[str, Any]] | None:
    """The newest earlier result.json of this item with the same provenance id, or None.

    Only results that ran to the end and whose LoadGen logs are still there qualify.
    """
    if not results_dir.is_dir():
        return None
    benchmark, scenario, mode = parts
    found = []
    for path in results_dir.glob(f"*/{benchmark}/{scenario}/{mode}*/result.json"):
        if path.is_relative_to(current_run):
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        prov = record.get("provenance") or {}
        if prov.get("id") != prov_id:
            continue
        if record.get("verdict", {}).get("outcome") not in REUSABLE_OUTCOMES:
            continue
        if record.get("result_validity") is None or not Path(record["log_dir"]).is_dir():
            continue
        found.append((path.stat().st_mtime, str(path), path, record))
    if not found:
        return None
    _, _, path, record = max(found)
    return path, record
