"""INT8 versions of the reference models, made by ONNX Runtime quantization and cached.

The recipe is data (``reference.quantization`` in the benchmark file):

* ``"method": "static"`` — :func:`onnxruntime.quantization.quantize_static` of the
  ``op_types`` with MinMax calibration on ``calibration_samples`` synthetic inputs made from
  their own seed (never the evaluation samples), in ``"format"`` QDQ or QOperator,
  optionally per channel. Activation scales are fixed, so a sample's output does not depend
  on the batch it runs in: the shipped benchmarks use this.
* ``"method": "dynamic"`` — :func:`onnxruntime.quantization.quantize_dynamic`: int8
  weights, activations quantized at run time with a scale taken from the whole batch, so
  results vary with the batching (Offline vs SingleStream vs Server).

Both are deterministic: same FP32 model, recipe, calibration data and ONNX Runtime version
give the same file. The file sits beside the FP32 model, named by a hash of all four; it is
made in a temporary directory next to it, renamed into place and sealed with its checksum
(``cache.py``): a damaged or half-built INT8 model is rebuilt, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_mlperf.backends.reference import cache

QUANTIZER_VERSION = 1

#: Makes the calibration inputs: a list of feeds {input name: array}, one per sample.
CalibrationInputs = Callable[[], Sequence[Mapping[str, NDArray[Any]]]]


def quantized_path(fp32_path: Path, recipe: Mapping[str, Any]) -> Path:
    """Where the INT8 model for ``fp32_path`` and ``recipe`` is cached."""
    import onnxruntime

    blob = json.dumps(
        {
            "v": QUANTIZER_VERSION,
            "model": fp32_path.name,
            "recipe": dict(recipe),
            "onnxruntime": onnxruntime.__version__,
        },
        sort_keys=True,
    ).encode()
    key = hashlib.sha256(blob).hexdigest()[:12]
    return fp32_path.with_name(f"{fp32_path.stem}.int8-{key}.onnx")


def ensure_quantized(
    fp32_path: Path, recipe: Mapping[str, Any], calibration: CalibrationInputs
) -> tuple[Path, bool]:
    """The cached INT8 model for ``fp32_path``, made now when absent or damaged (second
    value: made now). Call under ``cache.build_lock``, after ``ensure_model``."""
    path = quantized_path(fp32_path, recipe)
    problem = cache.damage(path)
    if problem is None:
        return path, False
    method = str(recipe.get("method", "static"))
    if method not in ("dynamic", "static"):
        raise ValueError(f"unknown quantization method {method!r}; valid: dynamic, static")
    cache.require_usable(path, problem)
    cache.discard(path)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".quant-") as tmp:
        named = Path(tmp) / "named.onnx"
        _write_named_copy(fp32_path, named)
        out = Path(tmp) / "int8.onnx"
        with _quiet_quantizer():
            if method == "dynamic":
                _dynamic(named, out, recipe)
            else:
                _static(named, out, recipe, calibration)
        os.replace(out, path)  # same directory: atomic, never a partial model
    cache.seal(path)  # last: a model without its checksum is an interrupted build
    return path, True


def _write_named_copy(source: Path, target: Path) -> None:
    """Copy the model giving every node a name (the quantizer names its nodes after them)."""
    import onnx

    model = onnx.load(str(source))
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type.lower()}_{i}"
    onnx.save(model, str(target))


def _dynamic(source: Path, target: Path, recipe: Mapping[str, Any]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        source,
        target,
        op_types_to_quantize=_op_types(recipe),
        per_channel=bool(recipe.get("per_channel", False)),
        weight_type=QuantType.QInt8,
    )


def _static(
    source: Path, target: Path, recipe: Mapping[str, Any], calibration: CalibrationInputs
) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    feeds = list(calibration())
    if not feeds:
        raise ValueError("static quantization needs calibration samples")

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it: Iterator[Mapping[str, NDArray[Any]]] = iter(feeds)

        def get_next(self) -> dict[str, NDArray[Any]] | None:
            feed = next(self._it, None)
            return None if feed is None else {k: np.ascontiguousarray(v) for k, v in feed.items()}

    formats = {"QDQ": QuantFormat.QDQ, "QOperator": QuantFormat.QOperator}
    quantize_static(
        source,
        target,
        Reader(),
        quant_format=formats[str(recipe.get("format", "QDQ"))],
        op_types_to_quantize=_op_types(recipe),
        per_channel=bool(recipe.get("per_channel", True)),
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )


def _op_types(recipe: Mapping[str, Any]) -> list[str] | None:
    """The op types to quantize; None: every type the quantizer supports."""
    op_types = recipe.get("op_types")
    return None if op_types is None else [str(t) for t in op_types]


class _DropQuantizerChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "quantization" not in record.pathname.replace(os.sep, "/")


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ONNX Runtime's quantizer logs advice on the root logger: keep it off the terminal."""
    root = logging.getLogger()
    chatter = _DropQuantizerChatter()
    root.addFilter(chatter)
    try:
        yield
    finally:
        root.removeFilter(chatter)
