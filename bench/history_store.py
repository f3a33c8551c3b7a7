"""History store: 10,000 records written by 4 concurrent writers (SQLite and PostgreSQL),
none lost; then the judgement of one item against a store of those 10,000 records.

    python bench/history_store.py [--records 10000] [--writers 4] [--postgres URL]

Without ``--postgres`` a throwaway server is started (tests/postgres_server.py: Debian's
postgresql, a unix socket in a temporary directory). Prints the figures; asserts nothing
about time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_mlperf.history.fingerprint import fingerprint, fingerprint_id  # noqa: E402
from pytest_mlperf.history.gate import HistoryGate  # noqa: E402
from pytest_mlperf.history.settings import HistorySettings  # noqa: E402
from pytest_mlperf.history.store import HistoryRecord, HistorySession, open_store  # noqa: E402

HOST = {"backend": "reference", "cpu": "bench CPU", "cpu_cores": 2, "onnxruntime": "1.x"}
CURRENT = {
    "benchmark": "bert-99",
    "scenario": "Offline",
    "mode": "performance",
    "config_ver": "default",
    "system": "reference-cpu",
    "backend": "reference",
    "fast": True,
    "plugin_version": "bench",
    "metric": {"name": "result_samples_per_second", "value": 250.0, "unit": "samples/s"},
}
PER_SESSION = 5  # records per session (one session: one transaction)


def _writer(location: str, worker: int, records: int) -> None:
    fp = fingerprint(CURRENT, HOST)
    fid = fingerprint_id(fp)
    with open_store(location) as store:
        for s in range(records // PER_SESSION):
            run_id = f"w{worker}-s{s}"
            rows = [
                HistoryRecord(
                    run_id=run_id,
                    item_key="bert-99/Offline/performance",
                    ref="main",
                    fingerprint_id=fid,
                    fingerprint=fp,
                    value=250.0 * (1 + 0.01 * ((s * 7 + j) % 11 - 5)),
                    unit="samples/s",
                    compared="result_samples_per_second",
                    higher_is_better=True,
                    good=True,
                    outcome="passed",
                    validity="VALID",
                    recorded_at=f"2026-12-{1 + worker:02d}T{s // 3600 % 24:02d}:"
                    f"{s // 60 % 60:02d}:{s % 60:02d}+00:00",
                    record=CURRENT,
                )
                for j in range(PER_SESSION)
            ]
            store.add_session(
                HistorySession(
                    run_id=run_id,
                    ref="main",
                    good=True,
                    interrupted=False,
                    source="bench",
                    added_at="bench",
                ),
                rows,
            )


def bench(name: str, location: str, records: int, writers: int) -> None:
    open_store(location).close()  # schema first, as a session's configure does
    ctx = multiprocessing.get_context("spawn")
    each = records // writers
    start = time.perf_counter()
    procs = [ctx.Process(target=_writer, args=(location, w, each)) for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    with open_store(location) as store:
        count = store.count()
    print(
        f"{name}: {writers} writers x {each} records ({each // PER_SESSION} sessions each) "
        f"in {wall:.1f} s; {count} of {writers * each} in the store, "
        f"{writers * each - count} lost; writer failures: {failed or 'none'}"
    )
    settings = HistorySettings(
        location=location, judge=True, ref="main", compare_ref="main", commit=None
    )
    gate = HistoryGate(settings, 5.0)
    gate.judge(CURRENT, HOST)  # opens the store, imports scipy
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        result = gate.judge(CURRENT, HOST)
        times.append((time.perf_counter() - t0) * 1000)
    gate.close()
    print(
        f"{name}: judging one item over {count} records: median {statistics.median(times):.2f} ms, "
        f"max {max(times):.2f} ms (50 judgements); {result.status}: {result.reason[:90]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--postgres", help="postgresql:// URL of an empty database")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlperf-bench-history-"))
    try:
        bench("SQLite", str(tmp / "history.sqlite"), args.records, args.writers)
        if args.postgres:
            bench("PostgreSQL", args.postgres, args.records, args.writers)
        else:
            from tests.postgres_server import PostgresServer, new_database

            server = PostgresServer(Path(tempfile.mkdtemp(prefix="mlperf-bench-pg-")))
            try:
                url = server.start()
                bench("PostgreSQL", new_database(url), args.records, args.writers)
            finally:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
