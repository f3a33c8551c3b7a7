"""Deterministic synthetic samples with the MLPerf input shapes, and response post-processing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

_CLS, _SEP = 101, 102


@dataclass(frozen=True)
class SampleSet:
    """All samples of a QSL, resident in memory, as model inputs keyed by input name."""

    inputs: Mapping[str, NDArray[Any]]
    count: int

    def batch(self, indices: NDArray[np.int64]) -> dict[str, NDArray[Any]]:
        """The model inputs for ``indices``."""
        return {name: arr[indices] for name, arr in self.inputs.items()}

    def subset(self, indices: tuple[int, ...]) -> SampleSet:
        """A new set holding the samples ``indices``, renumbered from 0 in that order."""
        rows = np.asarray(indices, dtype=np.int64)
        return SampleSet({name: arr[rows] for name, arr in self.inputs.items()}, len(rows))


def make_bert_samples(spec: Mapping[str, Any], count: int, seed: int) -> SampleSet:
    """Question+context token sequences of varied length, padded to ``seq_len``."""
    seq, vocab = int(spec["seq_len"]), int(spec["vocab_size"])
    rng = np.random.default_rng(seed)
    ids = np.zeros((count, seq), np.int64)
    mask = np.zeros((count, seq), np.int64)
    segments = np.zeros((count, seq), np.int64)
    for i in range(count):
        length = int(rng.integers(seq // 3, seq + 1))
        question = int(rng.integers(1, max(2, min(64, length // 2))))
        ids[i, :length] = rng.integers(1000, vocab, length)
        ids[i, 0], ids[i, question], ids[i, length - 1] = _CLS, _SEP, _SEP
        mask[i, :length] = 1
        segments[i, question + 1 : length] = 1
    return SampleSet({"input_ids": ids, "input_mask": mask, "segment_ids": segments}, count)


def make_unet_samples(spec: Mapping[str, Any], count: int, seed: int) -> SampleSet:
    """Noisy volumes with one or two bright ellipsoids (stand-ins for kidney and tumor)."""
    d, h, w = (int(v) for v in spec["volume"])
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(
        np.linspace(-1, 1, d), np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij"
    )
    volumes = rng.normal(0.0, 0.1, (count, 1, d, h, w)).astype(np.float32)
    for i in range(count):
        for intensity in (1.0, 2.0)[: int(rng.integers(1, 3))]:
            centre = rng.uniform(-0.5, 0.5, 3)
            radii = rng.uniform(0.15, 0.4, 3)
            inside = (
                ((zz - centre[0]) / radii[0]) ** 2
                + ((yy - centre[1]) / radii[1]) ** 2
                + ((xx - centre[2]) / radii[2]) ** 2
            ) <= 1.0
            volumes[i, 0][inside] += intensity
    return SampleSet({"input": volumes}, count)


def bert_response(outputs: list[NDArray[Any]]) -> NDArray[Any]:
    """MLPerf BERT responses: float32 [n, seq, 2] (start, end logits)."""
    return np.ascontiguousarray(np.stack(outputs[:2], axis=-1), dtype=np.float32)


def unet_response(outputs: list[NDArray[Any]]) -> NDArray[Any]:
    """MLPerf 3D-UNet responses: the uint8 label volume [n, D, H, W]."""
    return np.ascontiguousarray(np.argmax(outputs[0], axis=1).astype(np.uint8))


SAMPLE_MAKERS = {"bert": make_bert_samples, "unet3d": make_unet_samples}
RESPONSE_MAKERS = {"bert": bert_response, "unet3d": unet_response}
