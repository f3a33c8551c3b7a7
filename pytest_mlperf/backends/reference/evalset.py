"""The reference backend's evaluation sets: synthetic samples labelled by the FP32 model.

The reference models are small and untrained, so there is no real ground truth. The
evaluation set is written from code: the QSL's own synthetic samples, with the answers
(bert) or label volumes (3d-unet) that the **FP32** reference model predicts for them. An
accuracy run therefore measures the pipeline (LoadGen, responses, the accuracy log, the
metrics) and the loss of the INT8 model against FP32 — never the quality of BERT or
3D U-Net.

* bert: every token id is a made-up word (``word_for_token``), so each sample reads as a
  question and a context; the ground-truth answer is the span the FP32 model's logits
  select (the same best-span rule the metric uses). Samples for which the FP32 model
  selects no valid span cannot have an answer and are left out; the rest are renumbered
  0..n-1 as the accuracy QSL. Written as SQuAD v1.1 JSON with a ``features`` list (see
  :mod:`pytest_mlperf.accuracy.squad`).
* 3d-unet: every volume, labelled with the FP32 model's argmax, as ``qsl_<index>`` arrays
  in an ``.npz`` (see :mod:`pytest_mlperf.accuracy.kits`).

Files are cached under ``<cache>/eval/``, named by a hash of the model spec, the samples
and the ONNX Runtime version, written under a temporary name then renamed, and sealed with a
checksum verified on every use (as the model cache, ``cache.py``): a damaged file is
discarded and rebuilt, with a message.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_mlperf.accuracy.squad import best_span
from pytest_mlperf.backends.reference import cache
from pytest_mlperf.backends.reference.dataset import SampleSet
from pytest_mlperf.backends.reference.models import model_key
from pytest_mlperf.backends.reference.sut import Engine
from pytest_mlperf.errors import BackendError

EVALSET_VERSION = 1
_BATCH = 16
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = tuple(c + v for c in _CONSONANTS for v in _VOWELS)


def word_for_token(token_id: int) -> str:
    """A made-up word for a token id: three syllables, unique per id below 343,000.

    Some ids are capitalised or carry punctuation, so that the SQuAD normalisation has
    something to do (``Bakeli,`` and ``bakeli`` normalise alike).
    """
    n = len(_SYLLABLES)
    word = (
        _SYLLABLES[token_id % n]
        + _SYLLABLES[(token_id // n) % n]
        + _SYLLABLES[(token_id // (n * n)) % n]
    )
    if token_id % 7 == 0:
        word = word.capitalize()
    if token_id % 11 == 0:
        word += ","
    elif token_id % 13 == 0:
        word += "."
    elif token_id % 29 == 0:
        word = f'"{word}"'
    return word


@dataclass(frozen=True)
class EvalSet:
    """A written evaluation set and which QSL samples it holds, in accuracy-QSL order."""

    path: Path
    kind: str
    selection: tuple[int, ...]


def evalset_path(cache_dir: Path, spec: Mapping[str, Any], count: int, seed: int) -> Path:
    """Where the evaluation set of a model and its samples is cached."""
    import onnxruntime

    kind = str(spec["kind"])
    blob = json.dumps(
        {
            "v": EVALSET_VERSION,
            "model": model_key(spec),
            "count": count,
            "seed": seed,
            "onnxruntime": onnxruntime.__version__,
        },
        sort_keys=True,
    ).encode()
    key = hashlib.sha256(blob).hexdigest()[:16]
    suffix = "squad.json" if kind == "bert" else "kits.npz"
    return cache_dir / "eval" / f"{kind}-{key}.{suffix}"


def ensure_evalset(path: Path, kind: str, fp32: Engine) -> tuple[EvalSet, str | None]:
    """Load the evaluation set at ``path``, writing it first from ``fp32`` when absent or
    damaged; the second value says why it was written now (None: reused as it was).

    Sealed as the model cache is (``cache.py``): the checksum is written last and verified
    on every use, so a truncated or garbled file, or one whose write was cut before its
    checksum, is discarded and rebuilt, never read. Call under the cache's build lock.
    """
    problem = cache.damage(path)
    if problem is None:
        return EvalSet(path, kind, _selection(path, kind, fp32.samples.count)), None
    path.parent.mkdir(parents=True, exist_ok=True)
    if problem != "not built yet" and not cache.writable(path.parent):
        raise BackendError(
            f"cached evaluation set {path} {problem}, and the cache {path.parent} is "
            "read-only: rebuild it where it is writable (or point --mlperf-cache-dir elsewhere)"
        )
    cache.discard(path)
    if kind == "bert":
        _write_atomic(path, lambda fh: fh.write(json.dumps(squad_evalset(fp32)).encode()))
    else:
        _write_atomic(path, lambda fh: np.savez(fh, **kits_labels(fp32)))
    cache.seal(path)
    return EvalSet(path, kind, _selection(path, kind, fp32.samples.count)), problem


def _selection(path: Path, kind: str, count: int) -> tuple[int, ...]:
    if kind != "bert":
        return tuple(range(count))
    raw = json.loads(path.read_text(encoding="utf-8"))
    return tuple(int(f["source_index"]) for f in raw["features"])


def _write_atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _all_responses(engine: Engine) -> NDArray[Any]:
    count = engine.samples.count
    rows = [
        engine.infer(np.arange(start, min(start + _BATCH, count), dtype=np.int64))
        for start in range(0, count, _BATCH)
    ]
    return np.concatenate(rows)


def bert_layout(samples: SampleSet, index: int) -> tuple[NDArray[np.int32], list[int], list[int]]:
    """Token→word map, question token ids and context token ids of one bert sample.

    Layout: ``[CLS] question [SEP] context [SEP] padding``; context tokens are those with
    segment 1 and mask 1, except the closing ``[SEP]``.
    """
    ids = samples.inputs["input_ids"][index]
    mask = samples.inputs["input_mask"][index]
    segments = samples.inputs["segment_ids"][index]
    context = np.flatnonzero((segments == 1) & (mask == 1))[:-1]
    token_to_word = np.full(ids.shape[0], -1, np.int32)
    token_to_word[context] = np.arange(context.size, dtype=np.int32)
    first_sep = int(context[0]) - 1 if context.size else int(np.flatnonzero(mask)[-1])
    question = [int(t) for t in ids[1:first_sep]]
    return token_to_word, question, [int(t) for t in ids[context]]


def squad_evalset(fp32: Engine) -> dict[str, Any]:
    """The SQuAD v1.1 evaluation set for the bert samples, answered by the FP32 model."""
    samples = fp32.samples
    responses = _all_responses(fp32)
    paragraphs: list[dict[str, Any]] = []
    features: list[dict[str, Any]] = []
    for index in range(samples.count):
        token_to_word, question, context = bert_layout(samples, index)
        logits = responses[index]
        span = best_span(logits[:, 0], logits[:, 1], token_to_word)
        if span is None:
            continue
        words = [word_for_token(t) for t in context]
        first, last = int(token_to_word[span.start]), int(token_to_word[span.end])
        qid = f"ref-{index:05d}"
        paragraphs.append(
            {
                "context": " ".join(words),
                "qas": [
                    {
                        "id": qid,
                        "question": " ".join(word_for_token(t) for t in question) + "?",
                        "answers": [
                            {
                                "text": " ".join(words[first : last + 1]),
                                "answer_start": sum(len(w) + 1 for w in words[:first]),
                            }
                        ],
                    }
                ],
            }
        )
        features.append(
            {
                "qsl_idx": len(features),
                "example_id": qid,
                "source_index": index,
                "token_to_word": token_to_word.tolist(),
            }
        )
    return {
        "version": "1.1",
        "data": [{"title": "pytest-mlperf reference evaluation set", "paragraphs": paragraphs}],
        "features": features,
        "response": {"dtype": "float32"},
        "pytest_mlperf": {
            "ground_truth": "the FP32 reference model's own best span",
            "samples": samples.count,
            "kept": len(features),
        },
    }


def kits_labels(fp32: Engine) -> dict[str, Any]:
    """The FP32 model's label volume of every 3d-unet sample, keyed ``qsl_<index>``."""
    labels = _all_responses(fp32)
    return {f"qsl_{i:05d}": np.ascontiguousarray(labels[i]) for i in range(labels.shape[0])}
