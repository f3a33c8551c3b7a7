"""Measure how fast, and in how much memory, accuracy logs are parsed and scored.

    python bench/accuracy_parse.py [--bert-samples 10833] [--kits-cases 43] [--kits-edge 128]

Writes two synthetic accuracy logs the size of real MLPerf runs, with matching data sets,
into a temporary directory:

1. bert: ``--bert-samples`` responses of float32 [384, 2] logits (SQuAD v1.1 dev has 10,833
   features: ≈ 67 MB of log), one SQuAD question per feature;
2. 3d-unet: ``--kits-cases`` uint8 label volumes of ``--kits-edge``³ voxels (KiTS19 has 43
   cases; 128³ gives ≈ 180 MB of log), KiTS-style ground truth.

For each it prints the parse rate of the streaming reader alone, the rate of the whole
evaluation (reader + best span + F1, or reader + DICE), both in MB of log per second
(median of ``--rounds``), the peak memory the evaluation allocated (tracemalloc) beside
the log's size, and the cost of loading the data set (done once per item, not per entry).
Goal: ≥ 50 MB/s, memory bounded (independent of the log size).
Prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_mlperf.accuracy.evaluate import evaluate_log, load_dataset  # noqa: E402
from pytest_mlperf.accuracy.reader import iter_accuracy_log  # noqa: E402

SEQ = 384


def write_log(path: Path, rows: Callable[[int], bytes], count: int) -> None:
    """A LoadGen-shaped accuracy log, written entry by entry."""
    with path.open("w") as fh:
        fh.write("[\n")
        for i in range(count):
            sep = ",\n" if i else ""
            fh.write(
                f'{sep}{{ "seq_id" : {i}, "qsl_idx" : {i}, "data" : "{rows(i).hex().upper()}" }}'
            )
        fh.write("\n]\n")


def make_bert(tmp: Path, count: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    words = " ".join(f"w{i}" for i in range(300))
    t2w = [-1] * 40 + list(range(300)) + [-1] * (SEQ - 340)
    data = {
        "version": "1.1",
        "data": [
            {
                "title": "bench",
                "paragraphs": [
                    {
                        "context": words,
                        "qas": [
                            {
                                "id": f"q{i}",
                                "question": "?",
                                "answers": [{"text": "w5 w6", "answer_start": 9}],
                            }
                            for i in range(count)
                        ],
                    }
                ],
            }
        ],
        "features": [
            {"qsl_idx": i, "example_id": f"q{i}", "token_to_word": t2w} for i in range(count)
        ],
    }
    dataset = tmp / "squad.json"
    dataset.write_text(json.dumps(data))
    log = tmp / "bert_accuracy.json"
    write_log(log, lambda i: rng.standard_normal((SEQ, 2)).astype(np.float32).tobytes(), count)
    return log, dataset


def make_kits(tmp: Path, cases: int, edge: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(2)
    shape = (edge, edge, edge)
    truth = {
        f"qsl_{i:05d}": (rng.random(shape) < 0.05).astype(np.uint8) * (1 + i % 2)
        for i in range(cases)
    }
    dataset = tmp / "kits.npz"
    np.savez(dataset, **truth)
    log = tmp / "kits_accuracy.json"
    write_log(log, lambda i: truth[f"qsl_{i:05d}"][::-1].copy().tobytes(), cases)
    return log, dataset


def measure(name: str, log: Path, dataset_path: Path, rounds: int) -> None:
    size_mb = log.stat().st_size / 1e6
    tracemalloc.start()
    start = time.perf_counter()
    dataset = load_dataset(dataset_path)
    load_s = time.perf_counter() - start
    _, load_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    read_rates, eval_rates = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        n = sum(1 for _ in iter_accuracy_log(log))
        read_rates.append(size_mb / (time.perf_counter() - start))
        start = time.perf_counter()
        figures = evaluate_log(log, dataset)
        eval_rates.append(size_mb / (time.perf_counter() - start))
    tracemalloc.start()
    evaluate_log(log, dataset)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{name}: log {size_mb:.1f} MB, {n} entries; {figures.primary} = {figures.value:.4f}\n"
        f"  reader alone            {statistics.median(read_rates):7.0f} MB/s  (median of {rounds})\n"
        f"  evaluation (read+score) {statistics.median(eval_rates):7.0f} MB/s  (goal >= 50)\n"
        f"  evaluation peak memory  {peak / 1e6:7.1f} MB allocated (log: {size_mb:.0f} MB)\n"
        f"  data set load           {load_s:7.2f} s, {load_peak / 1e6:.1f} MB allocated"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bert-samples", type=int, default=10833)
    parser.add_argument("--kits-cases", type=int, default=43)
    parser.add_argument("--kits-edge", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        measure("bert", *make_bert(tmp, args.bert_samples), args.rounds)
        measure("3d-unet", *make_kits(tmp, args.kits_cases, args.kits_edge), args.rounds)


if __name__ == "__main__":
    main()
