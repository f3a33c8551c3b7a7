"""Measure TEST01's accuracy verification on logs the size of real runs.

    python bench/compliance_verify.py [--samples 10833] [--sampled 4096] [--rounds 3]

Writes a synthetic bert accuracy-mode log (``--samples`` responses of float32 [384, 2]
logits, ≈ 67 MB for SQuAD's 10,833 features) and an audit log of ``--sampled`` of those
responses (TEST01's bert sampling target is 4096), then times
:func:`pytest_mlperf.compliance.verify_accuracy` (the audit log held in memory, the
accuracy log streamed) and reports MB of accuracy log per second (median of ``--rounds``)
and the peak memory it allocated (tracemalloc) beside both logs' sizes.
Goal: ≥ 50 MB/s; memory bounded by the audit log, not the accuracy log.
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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_mlperf.compliance import verify_accuracy  # noqa: E402


def write_log(path: Path, rows: list[tuple[int, bytes]]) -> None:
    """A LoadGen-shaped accuracy log."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        for n, (idx, data) in enumerate(rows):
            sep = ",\n" if n else ""
            fh.write(sep + json.dumps({"seq_id": n, "qsl_idx": idx, "data": data.hex().upper()}))
        fh.write("\n]\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10833)
    parser.add_argument("--sampled", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        responses = [
            rng.standard_normal((384, 2), dtype=np.float32).tobytes() for _ in range(args.samples)
        ]
        acc = Path(tmp) / "accuracy.json"
        write_log(acc, list(enumerate(responses)))
        picks = rng.integers(0, args.samples, args.sampled)
        audit = Path(tmp) / "audit.json"
        write_log(audit, [(int(i), responses[int(i)]) for i in picks])
        del responses
        acc_mb = acc.stat().st_size / 1e6
        audit_mb = audit.stat().st_size / 1e6
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            match = verify_accuracy(acc, audit)
            times.append(time.perf_counter() - start)
        tracemalloc.start()
        verify_accuracy(acc, audit)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    seconds = statistics.median(times)
    print(
        f"accuracy log {acc_mb:.1f} MB ({args.samples} responses), audit log {audit_mb:.1f} MB ({args.sampled} sampled)"
    )
    print(
        f"verify_accuracy: {seconds:.2f} s median of {args.rounds} → {acc_mb / seconds:.0f} MB/s of accuracy log"
    )
    print(f"matched {match.matched}, mismatched {match.mismatched}, missing {match.missing}")
    print(
        f"peak allocated {peak / 1e6:.1f} MB (accuracy log {acc_mb:.1f} MB, audit log {audit_mb:.1f} MB)"
    )


if __name__ == "__main__":
    main()
