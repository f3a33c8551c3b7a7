"""SQuAD v1.1 scoring of BERT responses: best span, then exact match and token F1.

Written from the definitions of the SQuAD v1.1 evaluation and MLPerf's BERT
post-processing:

* **Normalisation** of an answer: lower-case, remove ASCII punctuation, remove the
  articles ``a``/``an``/``the`` (whole words), collapse whitespace.
* **Exact match** (EM): 1 when the normalised prediction equals the normalised answer.
* **F1**: over the bags of normalised tokens, ``2·P·R / (P + R)`` with
  ``P = common / len(prediction)`` and ``R = common / len(answer)``; 0 when no token is
  shared — which includes an empty prediction, and (as in v1.1) an empty answer.
* Each question scores the **maximum over its ground-truth answers**; a question without a
  prediction scores 0; EM and F1 are the means over all questions, ×100.
* **Best span** of one feature (one 384-token window, one LoadGen sample): the 20 highest
  start logits and the 20 highest end logits (ties: the lower position first) give 400
  candidate pairs; a pair is kept when both tokens map to context words, the start token
  has its maximum context in this feature, ``start <= end`` and the span is at most 30
  tokens long. The best pair has the highest ``start_logit + end_logit``; equal scores go
  to the earlier start, then the earlier end. Over the features of one question the best
  score wins (equal scores: the lower sample index). No valid pair: the prediction is
  empty.
* The predicted text is the context's whitespace-separated words from the start token's
  word to the end token's word, joined by single spaces.

Data set file (SQuAD v1.1 JSON plus the token→word map of each LoadGen sample)::

    {"version": "1.1",
     "data": [{"title": "...", "paragraphs": [{"context": "...",
               "qas": [{"id": "q1", "question": "...",
                        "answers": [{"text": "...", "answer_start": 0}]}]}]}],
     "features": [{"qsl_idx": 0, "example_id": "q1",
                   "token_to_word": [-1, -1, 0, 1, ...],  # per token; -1: not context
                   "max_context": [true, ...]}],           # optional, default all true
     "response": {"dtype": "float32"}}                     # optional; [seq_len, 2] per sample
"""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_mlperf.accuracy.figures import AccuracyFigures, DatasetError
from pytest_mlperf.accuracy.reader import iter_accuracy_log

N_BEST = 20
MAX_ANSWER_LENGTH = 30
_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


# -- text metrics --------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop articles, collapse whitespace."""
    no_punctuation = text.lower().translate(_DROP_PUNCTUATION)
    no_articles = _ARTICLES.sub(" ", no_punctuation)
    return " ".join(no_articles.split())


def exact_match(prediction: str, truth: str) -> float:
    """1.0 when both normalise to the same string, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    """Token F1 of the normalised strings, in [0, 1]; 0 when no token is shared."""
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(truth).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision = common / len(predicted)
    recall = common / len(expected)
    return 2 * precision * recall / (precision + recall)


def best_over_truths(prediction: str, truths: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) of ``prediction``: the maximum over the ground-truth answers."""
    if not truths:
        return 0.0, 0.0
    return (
        max(exact_match(prediction, t) for t in truths),
        max(f1_score(prediction, t) for t in truths),
    )


# -- best span ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    """The chosen answer span of one feature, in token positions."""

    start: int
    end: int
    score: float


def _top(logits: NDArray[Any], n: int) -> NDArray[np.intp]:
    """Positions of the ``n`` highest logits (NaN lowest); ties: the lower positions first.

    Only the set matters (the best pair is chosen by score and position), so a partition
    finds the n-th highest value and the ties at it are taken in position order.
    """
    size = logits.shape[0]
    if n >= size:
        return np.arange(size)
    if np.isnan(logits).any():
        logits = np.where(np.isnan(logits), -np.inf, logits)
    bound = np.partition(logits, size - n)[size - n]
    above = np.flatnonzero(logits > bound)
    ties = np.flatnonzero(logits == bound)[: n - above.size]
    return np.concatenate((above, ties))


def best_span(
    start_logits: NDArray[Any],
    end_logits: NDArray[Any],
    token_to_word: NDArray[np.integer[Any]],
    max_context: NDArray[np.bool_] | None = None,
    n_best: int = N_BEST,
    max_answer_length: int = MAX_ANSWER_LENGTH,
) -> Span | None:
    """The best valid span of one feature (see the module text), or None when none is valid."""
    starts = _top(start_logits, n_best)
    ends = _top(end_logits, n_best)
    starts = starts[token_to_word[starts] >= 0]
    if max_context is not None:
        starts = starts[max_context[starts]]
    ends = ends[token_to_word[ends] >= 0]
    s, e = starts[:, None], ends[None, :]
    valid = (s <= e) & (e - s < max_answer_length)
    score = (
        start_logits[starts].astype(np.float64)[:, None]
        + end_logits[ends].astype(np.float64)[None, :]
    )
    valid &= np.isfinite(score)
    if not valid.any():
        return None
    score = np.where(valid, score, -np.inf)
    rows, cols = np.nonzero(score == score.max())
    first, last = min(zip(starts[rows].tolist(), ends[cols].tolist(), strict=True))
    return Span(first, last, float(score[rows[0], cols[0]]))


# -- data set -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    """One SQuAD question: its context's words and its ground-truth answers."""

    qid: str
    words: tuple[str, ...]
    answers: tuple[str, ...]


@dataclass(frozen=True)
class Feature:
    """One LoadGen sample: which question it belongs to and its token→word map."""

    qsl_idx: int
    qid: str
    token_to_word: NDArray[np.int32]
    max_context: NDArray[np.bool_] | None


@dataclass(frozen=True)
class SquadDataset:
    """A SQuAD v1.1 data set with the features LoadGen's samples were made from."""

    path: Path
    questions: Mapping[str, Question]
    features: Mapping[int, Feature]
    dtype: np.dtype[Any]
    seq_len: int

    def answer_text(self, qid: str, span: Span, feature: Feature) -> str:
        """The context words a span covers."""
        words = self.questions[qid].words
        first = int(feature.token_to_word[span.start])
        last = int(feature.token_to_word[span.end])
        return " ".join(words[first : last + 1])


def _err(path: Path, what: str) -> DatasetError:
    return DatasetError(f"{path}: not a usable SQuAD data set: {what}")


def load_squad(path: Path, raw: Mapping[str, Any] | None = None) -> SquadDataset:
    """Read and check a SQuAD data set file (see the module text for its shape)."""
    if raw is None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"cannot read the SQuAD data set {path}: {exc}") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("data"), list):
        raise _err(path, "no 'data' list")
    questions: dict[str, Question] = {}
    try:
        for article in raw["data"]:
            for paragraph in article["paragraphs"]:
                words = tuple(str(paragraph["context"]).split())
                for qa in paragraph["qas"]:
                    qid = str(qa["id"])
                    answers = tuple(str(a["text"]) for a in qa["answers"])
                    questions[qid] = Question(qid, words, answers)
    except (KeyError, TypeError) as exc:
        raise _err(path, f"malformed article, paragraph or question ({exc!r})") from exc
    features = _features(path, raw.get("features"), questions)
    lengths = {len(f.token_to_word) for f in features.values()}
    if len(lengths) != 1:
        raise _err(path, f"features have different token counts {sorted(lengths)}")
    response = raw.get("response") or {}
    try:
        dtype = np.dtype(str(response.get("dtype", "float32")))
    except TypeError as exc:
        raise _err(path, f"bad response dtype ({exc})") from exc
    return SquadDataset(path, questions, features, dtype, lengths.pop())


def _features(path: Path, raw: Any, questions: Mapping[str, Question]) -> dict[int, Feature]:
    if not isinstance(raw, list) or not raw:
        raise _err(path, "no 'features' list (the token→word map of each LoadGen sample)")
    features: dict[int, Feature] = {}
    for n, item in enumerate(raw):
        try:
            idx, qid = int(item["qsl_idx"]), str(item["example_id"])
            t2w = np.asarray(item["token_to_word"], dtype=np.int32)
            ctx = item.get("max_context")
            max_context = None if ctx is None else np.asarray(ctx, dtype=np.bool_)
        except (KeyError, TypeError, ValueError) as exc:
            raise _err(path, f"features/{n}: {exc!r}") from exc
        if qid not in questions:
            raise _err(path, f"features/{n}: unknown example_id {qid!r}")
        if idx in features:
            raise _err(path, f"features/{n}: qsl_idx {idx} appears twice")
        if t2w.ndim != 1 or (max_context is not None and max_context.shape != t2w.shape):
            raise _err(path, f"features/{n}: token_to_word/max_context are not one flat list")
        if t2w.size and int(t2w.max()) >= len(questions[qid].words):
            raise _err(path, f"features/{n}: token_to_word points past the context's words")
        features[idx] = Feature(idx, qid, t2w, max_context)
    return features


# -- evaluation ---------------------------------------------------------------------------
def predictions_from_log(
    log: Path, dataset: SquadDataset, figures: AccuracyFigures
) -> dict[str, str]:
    """Stream the accuracy log: the predicted text of every question that has a response.

    Updates the counts in ``figures``; keeps only the best span per question in memory.
    """
    best: dict[str, tuple[float, int, Span]] = {}
    seen: set[int] = set()
    values = 2 * dataset.seq_len
    for entry in iter_accuracy_log(log):
        figures.logged += 1
        feature = dataset.features.get(entry.qsl_idx)
        if feature is None:
            figures.unknown += 1
            continue
        if entry.qsl_idx in seen:
            figures.duplicates += 1
            continue
        seen.add(entry.qsl_idx)
        if len(entry.data) != values * dataset.dtype.itemsize:
            figures.malformed += 1
            if len(figures.problems) < 5:
                figures.problems.append(
                    f"qsl_idx {entry.qsl_idx}: {len(entry.data)} bytes, expected "
                    f"{values * dataset.dtype.itemsize} ([{dataset.seq_len}, 2] {dataset.dtype})"
                )
            continue
        figures.scored += 1
        logits = np.frombuffer(entry.data, dtype=dataset.dtype).reshape(dataset.seq_len, 2)
        span = best_span(logits[:, 0], logits[:, 1], feature.token_to_word, feature.max_context)
        if span is None:
            continue
        current = best.get(feature.qid)
        if current is None or (span.score, -entry.qsl_idx) > (current[0], -current[1]):
            best[feature.qid] = (span.score, entry.qsl_idx, span)
    figures.missing = len(dataset.features) - len(seen)
    return {
        qid: dataset.answer_text(qid, span, dataset.features[idx])
        for qid, (_, idx, span) in best.items()
    }


def score_predictions(
    predictions: Mapping[str, str], questions: Iterable[Question]
) -> tuple[float, float, int]:
    """(EM×100, F1×100, number of questions) over every question; unanswered ones score 0."""
    em_total = f1_total = 0.0
    count = 0
    for question in questions:
        count += 1
        prediction = predictions.get(question.qid)
        if prediction is None:
            continue
        em, f1 = best_over_truths(prediction, question.answers)
        em_total += em
        f1_total += f1
    if count == 0:
        return 0.0, 0.0, 0
    return 100.0 * em_total / count, 100.0 * f1_total / count, count


def evaluate_squad(log: Path, dataset: SquadDataset) -> AccuracyFigures:
    """F1 and exact match of the responses in ``log`` against ``dataset``."""
    started = time.perf_counter()
    figures = AccuracyFigures.for_log("squad", "F1", len(dataset.features), dataset.path, log)
    predictions = predictions_from_log(log, dataset, figures)
    em, f1, _ = score_predictions(predictions, dataset.questions.values())
    figures.metrics = {"F1": f1, "exact_match": em}
    figures.seconds = time.perf_counter() - started
    return figures
