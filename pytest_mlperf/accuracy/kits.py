"""KiTS19-style DICE of 3D U-Net responses: kidney and tumor, per case, then the mean.

Written from the definitions of the KiTS19 evaluation as MLPerf Inference uses it:

* A response is the predicted label volume of one case (uint8, 0 background, 1 kidney,
  2 tumor), the same shape as the case's ground-truth labels.
* For each class ``c`` in kidney (1) and tumor (2): ``DICE = 2·|P∩T| / (|P| + |T|)`` where
  ``P`` and ``T`` are the voxels labelled ``c`` in the prediction and the truth. When the
  class is absent from both (``|P| + |T| = 0``) the case scores **1.0** for that class
  (perfect agreement); when it is in only one of them, 0.0.
* A case's composite score is the mean of its kidney and tumor DICE; the reported
  ``DICE`` is the mean composite over all cases, and ``kidney_DICE`` / ``tumor_DICE`` the
  per-class means. A case without a (well-formed) response scores 0.

Data set file: a NumPy ``.npz`` archive with one uint8 array per case named
``qsl_<index>`` (``qsl_00000``, ...), the ground-truth labels of LoadGen sample
``index``. Cases are read one at a time, so memory holds one case, not the data set.
"""

from __future__ import annotations

import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_mlperf.accuracy.figures import AccuracyFigures, DatasetError
from pytest_mlperf.accuracy.reader import iter_accuracy_log

#: KiTS19 classes scored, by label value.
CLASSES = (("kidney", 1), ("tumor", 2))
_KEY = re.compile(r"^qsl_(\d+)$")


def dice(prediction: NDArray[np.bool_], truth: NDArray[np.bool_]) -> float:
    """DICE of two masks; 1.0 when both are empty."""
    total = int(np.count_nonzero(prediction)) + int(np.count_nonzero(truth))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(prediction & truth)) / total


def case_scores(prediction: NDArray[Any], truth: NDArray[Any]) -> dict[str, float]:
    """Kidney and tumor DICE of one case, and their mean (``composite``)."""
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction shape {prediction.shape} != truth shape {truth.shape}")
    scores = {name: dice(prediction == label, truth == label) for name, label in CLASSES}
    scores["composite"] = sum(scores.values()) / len(CLASSES)
    return scores


@dataclass(frozen=True)
class KitsDataset:
    """Ground-truth label volumes, one per LoadGen sample, read lazily from an ``.npz``."""

    path: Path
    keys: dict[int, str]

    def truth(self, qsl_idx: int) -> NDArray[np.uint8]:
        """The labels of one case."""
        with np.load(self.path, allow_pickle=False) as archive:
            labels: NDArray[np.uint8] = archive[self.keys[qsl_idx]]
        return labels


def load_kits(path: Path) -> KitsDataset:
    """Open a KiTS-style ``.npz`` data set and list its cases (without reading them)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"cannot read the KiTS data set {path}: {exc}") from exc
    keys: dict[int, str] = {}
    for name in names:
        match = _KEY.match(name)
        if match:
            keys[int(match.group(1))] = name
    if not keys:
        raise DatasetError(f"{path}: not a KiTS data set: no 'qsl_<index>' label arrays")
    return KitsDataset(path, keys)


def evaluate_kits(log: Path, dataset: KitsDataset) -> AccuracyFigures:
    """Mean DICE (and per class) of the responses in ``log`` against ``dataset``."""
    started = time.perf_counter()
    figures = AccuracyFigures.for_log("kits", "DICE", len(dataset.keys), dataset.path, log)
    totals = {"composite": 0.0, **{name: 0.0 for name, _ in CLASSES}}
    seen: set[int] = set()
    with np.load(dataset.path, allow_pickle=False) as archive:
        for entry in iter_accuracy_log(log):
            figures.logged += 1
            key = dataset.keys.get(entry.qsl_idx)
            if key is None:
                figures.unknown += 1
                continue
            if entry.qsl_idx in seen:
                figures.duplicates += 1
                continue
            seen.add(entry.qsl_idx)
            truth = archive[key]
            if len(entry.data) != truth.size:
                figures.malformed += 1
                if len(figures.problems) < 5:
                    figures.problems.append(
                        f"qsl_idx {entry.qsl_idx}: {len(entry.data)} bytes, expected "
                        f"{truth.size} (uint8 {list(truth.shape)})"
                    )
                continue
            prediction = np.frombuffer(entry.data, dtype=np.uint8).reshape(truth.shape)
            for name, value in case_scores(prediction, truth).items():
                totals[name] += value
            figures.scored += 1
    figures.missing = len(dataset.keys) - len(seen)
    cases = max(len(dataset.keys), 1)
    figures.metrics = {
        "DICE": totals["composite"] / cases,
        **{f"{name}_DICE": totals[name] / cases for name, _ in CLASSES},
    }
    figures.seconds = time.perf_counter() - started
    return figures
