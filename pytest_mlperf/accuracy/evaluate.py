"""Backend-neutral accuracy: a LoadGen accuracy log + a data set → figures → a verdict.

A backend that can judge accuracy implements
:class:`~pytest_mlperf.backends.base.AccuracyProvider`: for an item it
names the evaluation data set and, when that data set is not the benchmark's real one, the
FP32 reference scores on it. Everything else — streaming the log, scoring, the 99 % /
99.9 % targets, the verdict — is the same for every backend.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlperf.accuracy.figures import AccuracyFigures, DatasetError
from pytest_mlperf.backends.base import (
    AccuracyData,
    AccuracyProvider,
    Backend,
    Progress,
    RunRequest,
)
from pytest_mlperf.catalog import Benchmark, Variant
from pytest_mlperf.display import format_accuracy

if TYPE_CHECKING:
    from pytest_mlperf.accuracy.kits import KitsDataset
    from pytest_mlperf.accuracy.squad import SquadDataset
    from pytest_mlperf.checks import Verdict
    from pytest_mlperf.results.loadgen import ParsedLog

    Dataset = SquadDataset | KitsDataset

#: The data set kind each primary metric is computed on.
KIND_OF_METRIC = {"F1": "squad", "DICE": "kits"}


@dataclass(frozen=True)
class AccuracyTarget:
    """The pass line of an accuracy item: ``metric >= threshold``."""

    metric: str
    threshold: float
    target_ratio: float
    fp32_reference: Mapping[str, float]
    source: str

    def describe(self) -> str:
        """``F1 >= 99.000`` for tables."""
        return f"{self.metric} >= {format_accuracy(self.threshold)}"


def accuracy_target(bench: Benchmark, variant: Variant, data: AccuracyData) -> AccuracyTarget:
    """The variant's target: its published value, or its ratio of the backend's FP32 score."""
    metric = bench.accuracy_metric
    if data.fp32_reference is None:
        return AccuracyTarget(
            metric,
            variant.target,
            variant.target_ratio,
            {metric: bench.fp32_reference},
            f"{bench.source.name}: published target",
        )
    if metric not in data.fp32_reference:
        raise DatasetError(
            f"no FP32 reference for {metric} in {data.reference_source or 'the backend data'}"
        )
    threshold = round(variant.target_ratio * data.fp32_reference[metric], 9)
    return AccuracyTarget(
        metric,
        threshold,
        variant.target_ratio,
        dict(data.fp32_reference),
        data.reference_source or "the backend's FP32 reference",
    )


def dataset_kind(path: Path) -> str | None:
    """``squad`` for a ``.json`` file, ``kits`` for an ``.npz`` file, else None."""
    return {".json": "squad", ".npz": "kits"}.get(path.suffix)


def load_dataset(path: Path) -> Dataset:
    """A SQuAD (``.json``) or KiTS (``.npz``) data set, by its file name."""
    if not path.is_file():
        raise DatasetError(f"data set {path} does not exist or is not a file")
    kind = dataset_kind(path)
    if kind == "kits":
        from pytest_mlperf.accuracy.kits import load_kits

        return load_kits(path)
    if kind == "squad":
        from pytest_mlperf.accuracy.squad import load_squad

        return load_squad(path)
    raise DatasetError(
        f"data set {path}: unknown kind; expected a SQuAD .json or a KiTS-style .npz file"
    )


@functools.lru_cache(maxsize=2)
def _load_unchanged(path: str, mtime_ns: int, size: int) -> Dataset:
    return load_dataset(Path(path))


def load_dataset_cached(path: Path) -> Dataset:
    """:func:`load_dataset`, reusing the last loads while the file is unchanged.

    The items of one benchmark (one per scenario) share a data set; a real SQuAD one takes
    seconds to load.
    """
    try:
        stat = path.stat()
    except OSError as exc:
        raise DatasetError(f"data set {path} does not exist or is not a file") from exc
    return _load_unchanged(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def evaluate_log(log: Path, dataset: Path | Dataset) -> AccuracyFigures:
    """Score the accuracy log ``log`` against ``dataset`` (a path or a loaded data set)."""
    from pytest_mlperf.accuracy.kits import KitsDataset, evaluate_kits
    from pytest_mlperf.accuracy.squad import SquadDataset, evaluate_squad

    loaded = load_dataset_cached(dataset) if isinstance(dataset, Path) else dataset
    if isinstance(loaded, SquadDataset):
        return evaluate_squad(log, loaded)
    if isinstance(loaded, KitsDataset):
        return evaluate_kits(log, loaded)
    raise TypeError(f"not a data set: {loaded!r}")  # pragma: no cover - typed away


def accuracy_record(
    figures: AccuracyFigures,
    target: AccuracyTarget | None,
    precision: str | None = None,
) -> dict[str, Any]:
    """The record's ``accuracy`` object: every metric with threshold, pass and FP32 ratio.

    ``metrics`` has the shape of the NVIDIA harness's ``accuracy`` list (name, value,
    threshold, pass) plus ``fp32_reference`` and ``ratio``. ``accuracy_pass`` is True when
    every metric with a threshold meets it (None without a target).
    """
    metrics = []
    for name, value in figures.metrics.items():
        reference = target.fp32_reference.get(name) if target else None
        threshold = target.threshold if target and name == target.metric else None
        metrics.append(
            {
                "name": name,
                "value": value,
                "threshold": threshold,
                "pass": None if threshold is None else bool(value >= threshold),
                "fp32_reference": reference,
                "ratio": _ratio(value, reference),
            }
        )
    judged = [m["pass"] for m in metrics if m["pass"] is not None]
    primary = metrics[0] if metrics else {}
    return {
        "metric": figures.primary,
        "value": primary.get("value"),
        "threshold": primary.get("threshold"),
        "target_ratio": target.target_ratio if target else None,
        "fp32_reference": primary.get("fp32_reference"),
        "ratio": primary.get("ratio"),
        "accuracy_pass": all(judged) if judged else None,
        "metrics": metrics,
        "precision": precision,
        "reference_source": target.source if target else None,
        **figures.to_dict(),
    }


def _ratio(value: float, reference: float | None) -> float | None:
    if reference is None or reference == 0 or not math.isfinite(value):
        return None
    return round(value / reference, 6)


def assess_accuracy(
    backend: Backend,
    request: RunRequest,
    parsed: ParsedLog | None,
    log_dir: Path,
    progress: Progress,
) -> tuple[Verdict, dict[str, Any] | None, str | None]:
    """Evaluate one accuracy item: (verdict, the record's ``accuracy`` object, threshold text).

    A backend that names no data set leaves the item unevaluated (xfailed, never passed).
    """
    from pytest_mlperf.results.loadgen import ACCURACY
    from pytest_mlperf.verdict import judge_accuracy, judge_accuracy_unevaluated

    log = log_dir / ACCURACY
    data = None
    if isinstance(backend, AccuracyProvider):
        data = backend.accuracy_data(request, progress)
    if data is None:
        from pytest_mlperf.accuracy.reader import count_entries

        entries = count_entries(log) if log.is_file() else 0
        return (
            judge_accuracy_unevaluated(entries, f"the {backend.name} backend names no data set"),
            None,
            None,
        )
    target = accuracy_target(request.benchmark, request.variant, data)
    expected = KIND_OF_METRIC.get(target.metric)
    if expected is not None and dataset_kind(data.dataset) != expected:
        raise DatasetError(
            f"{data.dataset} is not a {expected} data set, but {request.variant.name} is "
            f"scored by {target.metric} on one"
        )
    figures = evaluate_log(log, data.dataset)
    progress(
        f"{request.variant.name} {request.scenario} accuracy: "
        f"{target.metric} = {format_accuracy(figures.value)} "
        f"(threshold {format_accuracy(target.threshold)}, {figures.coverage_text()}, "
        f"{figures.log_bytes / 1e6:.1f} MB in {figures.seconds:.2f} s)"
    )
    record = accuracy_record(figures, target, data.precision)
    verdict = judge_accuracy(parsed, figures, record)
    return verdict, record, target.describe()
