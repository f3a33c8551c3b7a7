"""The fingerprint of a record: what must be equal for two results to be compared.

Hardware and software facts of the host (from the backend's host record) and the run's
own settings. A fact the backend does not report is ``None`` (and equal to ``None``): the
reference backend reports no GPU, the nvidia backend probes no ONNX Runtime. ECC is each
GPU's ``ecc_mode`` (NVML's current mode, else the ``nvidia-smi`` table's ECC column; see
:mod:`pytest_mlperf.host.probe`); TensorRT is the host record's ``tensorrt_version``, what
the harness container's Python reports (``tensorrt.__version__``; none in the stand-in).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: every fingerprint field, in the order reports show them
FIELDS = (
    "backend",
    "system",
    "gpu_model",
    "gpu_count",
    "gpu_memory_mib",
    "driver",
    "fabric_manager",
    "cuda",
    "tensorrt",
    "harness_commit",
    "image_digest",
    "power_limit_w",
    "mig",
    "ecc",
    "cpu_model",
    "cpu_cores",
    "cpu_count",
    "threads",
    "onnxruntime",
    "loadgen",
    "plugin_version",
    "config_ver",
    "fast",
    "server_target_qps",
)


def _gpus(host: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    gpus = host.get("gpus")
    return [g for g in gpus if isinstance(g, Mapping)] if isinstance(gpus, list) else []


def _distinct(values: list[Any]) -> Any:
    """One value when all agree, the sorted distinct values joined otherwise, None if none."""
    found = sorted({str(v) for v in values if v is not None})
    if not found:
        return None
    if len(found) == 1:
        only = [v for v in values if v is not None][0]
        return only
    return ",".join(found)


def _image_digest(host: Mapping[str, Any]) -> Any:
    digests = host.get("image_digests")
    if isinstance(digests, list) and digests:
        return ",".join(sorted(str(d) for d in digests))
    return host.get("image_id")


def fingerprint(record: Mapping[str, Any], host: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint of ``record`` (a result record, or the fields of one being judged)
    measured on ``host`` (the backend's host record, ``Backend.describe()``)."""
    prov = (record.get("provenance") or {}).get("inputs") or {}
    software = prov.get("software") or {}

    def fact(key: str) -> Any:
        value = host.get(key)
        return software.get(key) if value is None else value

    gpus = _gpus(host)
    pinned = None
    settings = record.get("settings") or {}
    if record.get("scenario") == "Server" and record.get("targets_source"):
        pinned = settings.get("target_qps")
    fm = host.get("fabric_manager_version")
    return {
        "backend": record.get("backend") or fact("backend"),
        "system": record.get("system") or fact("system_name"),
        "gpu_model": _distinct([g.get("name") for g in gpus]),
        "gpu_count": len(gpus) if gpus else fact("gpu_count"),
        "gpu_memory_mib": _distinct([g.get("memory_mib") for g in gpus]),
        "driver": fact("driver_version"),
        "fabric_manager": fm if fm is not None else None,
        "cuda": fact("cuda_version"),
        "tensorrt": fact("tensorrt_version"),
        "harness_commit": fact("harness_commit"),
        "image_digest": _image_digest(host) or _image_digest(software),
        "power_limit_w": _distinct([g.get("power_limit_w") for g in gpus]),
        "mig": _distinct([g.get("mig_mode") for g in gpus]),
        "ecc": _distinct([g.get("ecc_mode") for g in gpus]) or fact("ecc_mode"),
        "cpu_model": fact("cpu"),
        "cpu_cores": fact("cpu_cores"),
        "cpu_count": fact("cpu_count"),
        "threads": fact("threads"),
        "onnxruntime": fact("onnxruntime"),
        "loadgen": fact("loadgen"),
        "plugin_version": prov.get("plugin_version") or record.get("plugin_version"),
        "config_ver": record.get("config_ver"),
        "fast": record.get("fast"),
        "server_target_qps": pinned,
    }


def fingerprint_id(fp: Mapping[str, Any]) -> str:
    """A short stable hash of a fingerprint (16 hex digits of SHA-256)."""
    text = json.dumps({k: fp.get(k) for k in FIELDS}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def differences(current: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """What differs between two fingerprints: ``field: X here, Y there`` per field."""
    return [
        f"{key}: {current.get(key)} here, {other.get(key)} there"
        for key in FIELDS
        if current.get(key) != other.get(key)
    ]
