"""SQuAD F1/EM, best span and KiTS DICE pinned to hand-computed cases; the log reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_mlperf.accuracy.kits import case_scores, dice, evaluate_kits, load_kits
from pytest_mlperf.accuracy.reader import AccuracyLogError, iter_accuracy_log
from pytest_mlperf.accuracy.squad import (
    Question,
    best_over_truths,
    best_span,
    evaluate_squad,
    exact_match,
    f1_score,
    load_squad,
    normalize_answer,
    score_predictions,
)


# -- SQuAD normalisation and text metrics ---------------------------------------------------
@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The  Quick, brown fox!", "quick brown fox"),
        ("an apple a day", "apple day"),
        ("Theatre thereby", "theatre thereby"),  # articles only as whole words
        ("A", ""),
        ('"Bakeli," said the man.', "bakeli said man"),
        ("\tTabs\nand   spaces ", "tabs and spaces"),
    ],
)
def test_normalize_answer(text: str, normalised: str) -> None:
    assert normalize_answer(text) == normalised


@pytest.mark.parametrize(
    ("prediction", "truth", "f1", "em"),
    [
        ("the cat sat", "cat sat on mat", 2 / 3, 0.0),  # P = 1, R = 1/2
        ("x x y", "x y y", 2 / 3, 0.0),  # bags: common = min counts = 2
        ("Kalo,", "kalo", 1.0, 1.0),
        ("", "cat", 0.0, 0.0),  # empty prediction
        ("dog", "cat", 0.0, 0.0),
        ("", "", 0.0, 1.0),  # v1.1: no shared token -> F1 0, but the strings match
        ("the", "a", 0.0, 1.0),  # both normalise to empty
        ("big red car", "red car", 0.8, 0.0),  # P = 2/3, R = 1
    ],
)
def test_f1_and_exact_match(prediction: str, truth: str, f1: float, em: float) -> None:
    assert f1_score(prediction, truth) == pytest.approx(f1)
    assert exact_match(prediction, truth) == em


def test_several_ground_truths_take_the_best() -> None:
    assert best_over_truths("blue car", ["car", "the blue car", "red car"]) == (1.0, 1.0)
    em, f1 = best_over_truths("big red car", ["red car", "car"])
    assert (em, f1) == (0.0, pytest.approx(0.8))  # type: ignore[comparison-overlap]  # 0.8 beats 0.5 against "car"
    assert best_over_truths("anything", []) == (0.0, 0.0)


def test_unanswered_questions_score_zero() -> None:
    questions = [Question("q1", ("a",), ("red car",)), Question("q2", ("b",), ("dog",))]
    em, f1, count = score_predictions({"q1": "big red car"}, questions)
    assert count == 2
    assert f1 == pytest.approx(100 * 0.8 / 2)
    assert em == 0.0


# -- best span ------------------------------------------------------------------------------
def _f32(values: list[float]) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_best_span_skips_non_context_and_reversed_spans() -> None:
    t2w = np.array([-1, -1, 0, 1, 2, 3, 4, -1], np.int32)
    start = _f32([9, 0, 1, 5, 2, 0, 0, 8])  # positions 0 and 7 are not context
    end = _f32([9, 0, 0, 7, 0, 6, 2, 0])
    span = best_span(start, end, t2w)
    # candidates: start 3 (5) with end 3 (7) = 12 beats end 5 (6) = 11
    assert span is not None and (span.start, span.end, span.score) == (3, 3, 12.0)
    start2 = _f32([0, 0, 0, 0, 0, 10, 0, 0])
    end2 = _f32([0, 0, 0, 10, 0, 0, 0, 0])  # best end before best start
    span2 = best_span(start2, end2, t2w)
    # (5, 3) scores 20 but is reversed; the ties at 10 go to the earliest start: (2, 3)
    assert span2 is not None and (span2.start, span2.end, span2.score) == (2, 3, 10.0)


def test_best_span_ties_go_to_the_earlier_start_then_end() -> None:
    t2w = np.arange(8, dtype=np.int32)
    start = _f32([0, 0, 2, 2, 0, 0, 0, 0])
    end = _f32([0, 0, 0, 0, 3, 3, 0, 0])
    span = best_span(start, end, t2w)
    assert span is not None and (span.start, span.end) == (2, 4)


def test_best_span_limits_length_and_needs_max_context() -> None:
    t2w = np.arange(40, dtype=np.int32)
    start = np.zeros(40, np.float32)
    end = np.zeros(40, np.float32)
    start[0], end[35] = 10, 10  # 36 tokens: too long
    end[29] = 5  # 30 tokens: allowed
    span = best_span(start, end, t2w)
    assert span is not None and (span.start, span.end) == (0, 29)
    max_context = np.ones(40, np.bool_)
    max_context[0] = False
    span = best_span(start, end, t2w, max_context)
    assert span is not None and span.start != 0


def test_best_span_only_looks_at_the_20_best_starts() -> None:
    t2w = np.full(30, -1, np.int32)
    t2w[25:] = np.arange(5)
    start = np.linspace(30, 10, 30).astype(np.float32)  # ranks 0..24 are not context
    end = np.zeros(30, np.float32)
    end[26] = 50
    assert best_span(start, end, t2w) is None  # the context start ranks 26th
    assert best_span(start, end, t2w, n_best=26) is not None


# -- DICE -----------------------------------------------------------------------------------
def test_dice_hand_computed() -> None:
    truth = np.array([[[0, 1, 1, 2], [0, 1, 0, 2]]], np.uint8)
    pred = np.array([[[0, 1, 0, 2], [1, 1, 0, 0]]], np.uint8)
    scores = case_scores(pred, truth)
    assert scores["kidney"] == pytest.approx(4 / 6)  # |P|=3 |T|=3 |P∩T|=2
    assert scores["tumor"] == pytest.approx(2 / 3)  # |P|=1 |T|=2 |P∩T|=1
    assert scores["composite"] == pytest.approx((4 / 6 + 2 / 3) / 2)


def test_dice_empty_classes() -> None:
    background = np.zeros((2, 3, 4), np.uint8)
    assert case_scores(background, background) == {"kidney": 1.0, "tumor": 1.0, "composite": 1.0}
    truth = background.copy()
    truth[0, 0, 0] = 1
    assert case_scores(background, truth) == {"kidney": 0.0, "tumor": 1.0, "composite": 0.5}
    assert dice(np.zeros(4, bool), np.ones(4, bool)) == 0.0
    with pytest.raises(ValueError, match="shape"):
        case_scores(background, background[:1])


# -- the accuracy log reader ----------------------------------------------------------------
LOG = (
    '[\n{ "seq_id" : 0, "qsl_idx" : 5, "data" : "0A0b" },\n'
    '{"qsl_idx":2,"seq_id":1,"data":""}  ,\n'
    '{ "seq_id" : 2, "qsl_idx" : 7, "data" : "FF00FF00" }\n]\n'
)


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
def test_reader_is_chunk_independent(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "log.json"
    path.write_text(LOG)
    entries = list(iter_accuracy_log(path, chunk_size=chunk))
    assert [(e.seq_id, e.qsl_idx, e.data) for e in entries] == [
        (0, 5, b"\x0a\x0b"),
        (1, 2, b""),
        (2, 7, b"\xff\x00\xff\x00"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LOG.rstrip()[:-1], "without its closing"),  # cut before ']'
        (LOG[:60], "cut short|without its closing"),
        (LOG.replace("0A0b", "0A0g"), "not hex"),
        ('{"a": 1}', "expected '\\['"),
        (LOG.replace("},", "}"), "unexpected"),
        (LOG + "x", "after the closing"),
        ('[{"seq_id": 0, "data": "00"}]', "qsl_idx"),
    ],
)
def test_reader_rejects_broken_logs(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "log.json"
    path.write_text(text)
    with pytest.raises(AccuracyLogError, match=message):
        list(iter_accuracy_log(path, chunk_size=5))


def test_reader_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("[\n]\n")
    assert list(iter_accuracy_log(tmp_path / "empty.json")) == []
    with pytest.raises(AccuracyLogError, match="cannot read"):
        list(iter_accuracy_log(tmp_path / "absent.json"))


# -- whole evaluations on hand-built data sets ----------------------------------------------
def _log(path: Path, entries: list[tuple[int, bytes]]) -> Path:
    items = [
        json.dumps({"seq_id": i, "qsl_idx": idx, "data": data.hex().upper()})
        for i, (idx, data) in enumerate(entries)
    ]
    path.write_text("[\n" + ",\n".join(items) + "\n]\n")
    return path


def _squad(tmp_path: Path) -> Path:
    data = {
        "version": "1.1",
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "The red fox jumps high",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "who?",
                                "answers": [{"text": "red fox", "answer_start": 4}],
                            }
                        ],
                    },
                    {
                        "context": "blue sky today",
                        "qas": [
                            {
                                "id": "q2",
                                "question": "what?",
                                "answers": [{"text": "sky", "answer_start": 5}],
                            }
                        ],
                    },
                ],
            }
        ],
        # q1 is split over two features (windows); q2 has one
        "features": [
            {"qsl_idx": 0, "example_id": "q1", "token_to_word": [-1, 0, 1, 2, -1, -1]},
            {"qsl_idx": 1, "example_id": "q1", "token_to_word": [-1, 1, 2, 3, 4, -1]},
            {"qsl_idx": 2, "example_id": "q2", "token_to_word": [-1, 0, 1, 2, -1, -1]},
        ],
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    return path


def _logits(start: int, end: int, high: float) -> bytes:
    out = np.zeros((6, 2), np.float32)
    out[start, 0] = out[end, 1] = high
    return out.tobytes()


def test_evaluate_squad_across_features_with_missing_and_duplicates(tmp_path: Path) -> None:
    dataset = load_squad(_squad(tmp_path))
    log = _log(
        tmp_path / "log.json",
        [
            (0, _logits(1, 2, 1.0)),  # "The red", score 2
            (1, _logits(1, 2, 3.0)),  # "red fox", score 6: wins for q1
            (0, _logits(3, 3, 9.0)),  # duplicate of sample 0: ignored
            (9, _logits(1, 1, 1.0)),  # not in the data set
        ],
    )
    figures = evaluate_squad(log, dataset)
    assert figures.metrics == {"F1": 50.0, "exact_match": 50.0}  # q2 unanswered: 0
    assert (figures.logged, figures.scored, figures.missing) == (4, 2, 1)
    assert (figures.duplicates, figures.unknown, figures.malformed) == (1, 1, 0)
    assert not figures.complete
    assert "2 of 3 samples scored (1 missing" in figures.coverage_text()


def test_evaluate_squad_partial_credit_and_malformed(tmp_path: Path) -> None:
    dataset = load_squad(_squad(tmp_path))
    log = _log(
        tmp_path / "log.json",
        [(0, _logits(2, 3, 1.0)), (1, b"\x00" * 8), (2, _logits(1, 2, 1.0))],
    )
    figures = evaluate_squad(log, dataset)
    # q1: "red fox" vs "red fox" = 1; q2: "blue sky" vs "sky": P 1/2, R 1 -> 2/3
    assert figures.metrics["F1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert figures.metrics["exact_match"] == pytest.approx(50.0)
    assert figures.malformed == 1 and "qsl_idx 1: 8 bytes" in figures.problems[0]


def test_squad_dataset_errors(tmp_path: Path) -> None:
    from pytest_mlperf.accuracy.figures import DatasetError

    raw = json.loads(_squad(tmp_path).read_text())
    raw["features"][0]["example_id"] = "nope"
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="unknown example_id 'nope'"):
        load_squad(tmp_path / "bad.json")
    raw = json.loads(_squad(tmp_path).read_text())
    raw["features"][2]["token_to_word"] = [-1, 0, 1, 2, 3, -1]  # past "blue sky today"
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="points past"):
        load_squad(tmp_path / "bad.json")


def test_evaluate_kits(tmp_path: Path) -> None:
    truth0 = np.zeros((2, 2, 2), np.uint8)
    truth0[0, 0, 0] = 1
    truth1 = np.zeros((2, 2, 2), np.uint8)  # all background
    truth2 = np.ones((2, 2, 2), np.uint8)
    np.savez(tmp_path / "kits.npz", qsl_00000=truth0, qsl_00001=truth1, qsl_00002=truth2)
    dataset = load_kits(tmp_path / "kits.npz")
    pred0 = truth0.copy()
    pred0[1, 1, 1] = 2  # kidney exact (1), tumor 0 vs 1 voxel: 0
    log = _log(
        tmp_path / "log.json",
        [(0, pred0.tobytes()), (1, truth1.tobytes()), (2, b"\x01" * 3)],
    )
    figures = evaluate_kits(log, dataset)
    # case 0: (1 + 0) / 2; case 1: (1 + 1) / 2; case 2 malformed: 0
    assert figures.metrics["DICE"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert figures.metrics["kidney_DICE"] == pytest.approx(2 / 3)
    assert figures.metrics["tumor_DICE"] == pytest.approx(1 / 3)
    assert figures.malformed == 1 and figures.scored == 2


# -- the accuracy verdict -------------------------------------------------------------------
def _judged(
    value: float, missing: int = 0, errors: tuple[str, ...] = ()
) -> tuple[str, list[str], dict[str, Any]]:
    from pytest_mlperf.accuracy.evaluate import AccuracyTarget, accuracy_record
    from pytest_mlperf.accuracy.figures import AccuracyFigures
    from pytest_mlperf.results.loadgen import ParsedLog
    from pytest_mlperf.verdict import judge_accuracy

    figures = AccuracyFigures(
        "kits", "DICE", {"DICE": value, "kidney_DICE": 1.0}, samples=4, scored=4 - missing
    )
    figures.logged, figures.missing = 4 - missing, missing
    target = AccuracyTarget("DICE", 0.8, 0.99, {"DICE": 0.8080808}, "test data")
    record = accuracy_record(figures, target, "int8")
    verdict = judge_accuracy(ParsedLog(source="x", errors=list(errors)), figures, record)
    return verdict.outcome, verdict.reasons, record


def test_accuracy_verdict() -> None:
    outcome, reasons, record = _judged(0.81)
    assert outcome == "passed" and reasons == [] and record["accuracy_pass"] is True
    assert record["ratio"] == pytest.approx(0.81 / 0.8080808, abs=1e-6)
    assert record["metrics"][1] == {
        "name": "kidney_DICE",
        "value": 1.0,
        "threshold": None,
        "pass": None,
        "fp32_reference": None,
        "ratio": None,
    }
    outcome, reasons, record = _judged(0.79)
    assert outcome == "failed" and record["accuracy_pass"] is False
    assert reasons == [
        "DICE: 0.79000 (expected >= 0.80000 (99 % of FP32 0.80808)) "
        "ratio to FP32 reference 0.9776 (int8)"
    ]
    # the metric passes, but a sample is missing or LoadGen logged an error: still a failure
    outcome, reasons, record = _judged(0.9, missing=1)
    assert outcome == "failed" and record["accuracy_pass"] is True
    assert reasons[0].startswith("responses: 3 of 4 samples scored (1 missing)")
    outcome, reasons, _ = _judged(0.9, errors=("error_runtime: boom",))
    assert outcome == "failed" and reasons[0].startswith("loadgen: errors")
