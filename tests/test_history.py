"""The history store (SQLite and a real PostgreSQL server), its statistics and fingerprints,
and the gate through pytest: two sessions of one build never regress, a history edited to
1000x the value does."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.cli import main as cli_main
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.history.fingerprint import differences, fingerprint, fingerprint_id
from pytest_mlperf.history.ingest import import_results, judged_figure, session_is_good
from pytest_mlperf.history.settings import parse_history_settings
from pytest_mlperf.history.stats import IMPROVED, INCONCLUSIVE, REGRESSED, UNCHANGED, judge
from pytest_mlperf.history.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    HistoryError,
    HistoryRecord,
    HistorySession,
    open_store,
)
from tests.conftest import RunMlperf
from tests.postgres_server import postgres_server, postgres_url  # noqa: F401

KEY = "bert-99/Offline/performance"


def _record(
    run_id: str, value: float, i: int = 0, good: bool = True, fp: str = "f"
) -> HistoryRecord:
    return HistoryRecord(
        run_id=run_id,
        item_key=KEY,
        ref="main",
        fingerprint_id=fp,
        fingerprint={"backend": "reference"},
        value=value,
        unit="samples/s",
        compared="result_samples_per_second",
        higher_is_better=True,
        good=good,
        outcome="passed",
        validity="VALID",
        recorded_at=f"2026-12-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
        record={"benchmark": "bert-99", "value": value},
    )


def _session(run_id: str, good: bool = True) -> HistorySession:
    return HistorySession(
        run_id=run_id, ref="main", good=good, interrupted=False, source="test", added_at="now"
    )


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "h.sqlite")
    return str(request.getfixturevalue("postgres_url"))


def test_store_adds_and_lists_newest_first(location: str) -> None:
    with open_store(location) as store:
        assert store.schema_version() == SCHEMA_VERSION
        for i in range(12):
            assert store.add_session(_session(f"r{i}"), [_record(f"r{i}", 100.0 + i, i)]) == 1
        store.add_session(_session("bad", good=False), [_record("bad", 1.0, 99, good=False)])
        store.add_session(_session("other"), [_record("other", 5.0, 98, fp="g")])
        got = store.records(KEY, "f", "main", limit=10)
        assert [r.run_id for r in got] == [f"r{i}" for i in range(11, 1, -1)]
        assert got[0].value == 111.0 and got[0].record == {"benchmark": "bert-99", "value": 111.0}
        assert len(store.records(KEY, "f", "main", good_only=False)) == 13
        assert store.other_fingerprints(KEY, "main", "f")[0].run_id == "other"
        assert store.add_session(_session("r3"), [_record("r3", 1.0)]) == 0  # already there
        assert store.count() == 14
    with open_store(location) as again:  # reopened: nothing migrated twice, nothing lost
        assert again.count() == 14 and again.schema_version() == SCHEMA_VERSION


def test_an_old_schema_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE mlperf_history_meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO mlperf_history_meta VALUES ('schema_version', '1')")
    for statement in MIGRATIONS[1]:
        conn.execute(statement.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT"))
    conn.commit()
    conn.close()
    with open_store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
    indexes = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "mlperf_history_lookup" in indexes


def test_damaged_foreign_newer_and_unreachable_stores_are_errors(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match=r"damaged.sqlite.*(not a database|damaged)"):
        open_store(damaged)
    foreign = tmp_path / "foreign.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(HistoryError, match="database of something else .*users"):
        open_store(foreign)
    newer = tmp_path / "newer.sqlite"
    open_store(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE mlperf_history_meta SET value = '99'")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match="schema version 99"):
        open_store(newer)
    with pytest.raises(HistoryError, match=r"postgresql://\*\*\*@.*cannot connect"):
        open_store("postgresql://mlperf:s3cretpassw0rd@/nodb?host=/nonexistent-socket-dir")
    with pytest.raises(ConfigError, match="neither a file path nor a postgresql"):
        parse_history_settings("mysql://x", None, None, None, tmp_path, tmp_path, {})


def _writer(location: str, worker: int, sessions: int, per_session: int) -> None:
    with open_store(location) as store:
        for s in range(sessions):
            run_id = f"w{worker}-{s}"
            rows = [_record(run_id, 1.0 + j, j) for j in range(per_session)]
            store.add_session(_session(run_id), rows)


def test_concurrent_writers_lose_nothing(location: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(location, w, 10, 20)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    with open_store(location) as store:
        assert store.count() == 4 * 10 * 20
        assert len(store.sessions()) == 40


def test_stats_inconclusive_until_enough_then_judges_both_rules() -> None:
    noisy = [100.0, 104.0, 97.0, 101.0, 99.0, 103.0, 96.0, 100.0, 102.0, 98.0]
    few = judge(90.0, noisy[:3], True, 5.0)
    assert few.status == INCONCLUSIVE and "history has 3 of 5" in few.reason
    assert judge(100.0, [], True, 5.0).reason == "inconclusive: history has 0 of 5"
    same = judge(101.0, noisy, True, 5.0)
    assert same.status == UNCHANGED and same.detectable_pct is not None
    assert f"can detect >= {same.detectable_pct:.1f} %" in same.reason
    assert judge(33.0, noisy, True, 5.0).status == REGRESSED  # 3x slower
    assert judge(300.0, noisy, False, 5.0).status == REGRESSED  # latency 3x up
    assert judge(130.0, noisy, True, 5.0).status == IMPROVED
    # significant but smaller than the tolerance: not claimed
    tight = [100.0, 100.1, 99.9, 100.05, 99.95, 100.0]
    assert judge(97.0, tight, True, 5.0).status == UNCHANGED
    # beyond the tolerance but inside a wide history's noise: not claimed
    wide = [100.0, 130.0, 75.0, 110.0, 85.0, 120.0]
    assert judge(88.0, wide, True, 5.0).status == UNCHANGED


def test_fingerprint_separates_what_matters() -> None:
    host = {
        "backend": "nvidia",
        "driver_version": "550.54",
        "cuda_version": "12.4",
        "gpus": [
            {"name": "H100", "memory_mib": 81559, "power_limit_w": 700.0, "mig_mode": "Disabled"}
        ]
        * 8,
        "fabric_manager_version": "550.54",
        "harness_commit": "abc",
        "image_digests": ["sha256:1"],
    }
    record = {
        "backend": "nvidia",
        "system": "H100-SXM-80GBx8",
        "config_ver": "default",
        "fast": False,
        "scenario": "Offline",
    }
    fp = fingerprint(record, host)
    assert fp["gpu_count"] == 8 and fp["gpu_model"] == "H100" and fp["image_digest"] == "sha256:1"
    other = fingerprint(record, {**host, "driver_version": "555.1"})
    assert fingerprint_id(fp) != fingerprint_id(other)
    assert differences(fp, other) == ["driver: 550.54 here, 555.1 there"]
    # ECC per GPU (probe: NVML or the nvidia-smi table) and TensorRT (the container's Python)
    assert (fp["ecc"], fp["tensorrt"]) == (None, None)
    ecc_on = [{**g, "ecc_mode": "Enabled"} for g in host["gpus"]]  # type: ignore[dict-item]
    on = fingerprint(record, {**host, "gpus": ecc_on, "tensorrt_version": "10.2.0.19"})
    assert (on["ecc"], on["tensorrt"]) == ("Enabled", "10.2.0.19")
    off = fingerprint(record, {**host, "gpus": [{**g, "ecc_mode": "Disabled"} for g in ecc_on]})
    assert differences(on, off) == [
        "tensorrt: 10.2.0.19 here, None there",
        "ecc: Enabled here, Disabled there",
    ]
    pinned = {
        **record,
        "scenario": "Server",
        "targets_source": "--mlperf-targets t.json",
        "settings": {"target_qps": 50.0},
    }
    assert fingerprint(pinned, host)["server_target_qps"] == 50.0
    value, unit, _what, higher, _ = judged_figure(
        {
            **pinned,
            "metric": {"name": "m", "value": 50.0, "unit": "samples/s"},
            "loadgen": {"result_99.00_percentile_latency_ns": 7e6},
        }
    )
    assert (value, unit, higher) == (7e6, "ns", False)


def test_session_goodness_and_import(tmp_path: Path) -> None:
    assert session_is_good([{"verdict": {"outcome": "passed"}}], interrupted=False)
    assert not session_is_good([{"verdict": {"outcome": "passed"}}], interrupted=True)
    assert not session_is_good([{"verdict": {"outcome": "failed"}}], interrupted=False)
    item = {
        "benchmark": "bert-99",
        "scenario": "Offline",
        "mode": "performance",
        "config_ver": "default",
        "system": "reference-cpu",
        "backend": "reference",
        "fast": True,
        "result_validity": "VALID",
        "metric": {"name": "result_samples_per_second", "value": 250.0, "unit": "samples/s"},
        "verdict": {"outcome": "passed"},
    }
    results = tmp_path / "run" / "results.json"
    results.parent.mkdir()
    results.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "run_id": "old",
                "finished": "2026-11-01T00:00:00+00:00",
                "host": {"cpu": "EPYC"},
                "items": [item],
            }
        )
    )
    with open_store(tmp_path / "h.sqlite") as store:
        assert import_results(store, results, "main") == ("old", 1, True)
        assert import_results(store, results, "main") == ("old", 0, True)  # idempotent
        got = store.records(KEY, None, "main")
        assert got[0].value == 250.0 and got[0].fingerprint["cpu_model"] == "EPYC"
    assert cli_main(["history", "--store", str(tmp_path / "h.sqlite"), "show", KEY]) == 0
    assert cli_main(["history", "--store", str(tmp_path / "missing.sqlite"), "list"]) == 1


def _gate(run_mlperf: RunMlperf, store: Path) -> pytest.RunResult:
    return run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        f"--mlperf-history={store}",
        "--mlperf-history-ref=main",
        "-rs",
    )


def _statuses(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    out = []
    for path in sorted((pytester.path / "mlperf-results").glob("*/results.json")):
        for item in json.loads(path.read_text())["items"]:
            out.append(item["baseline"])
    return out


def test_gate_two_sessions_never_regress_and_an_edited_history_does(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    store = pytester.path / "history.sqlite"
    first = _gate(run_mlperf, store)
    first.assert_outcomes(skipped=1)
    first.stdout.fnmatch_lines(["*history: 1 record(s) added*good*"])
    first.stdout.fnmatch_lines(["*inconclusive: history has 0 of 5*"])
    # the fingerprint judged with equals the one a record gets without a judgement (the
    # default store, an import): from the record and the session's host record alone
    (results,) = (pytester.path / "mlperf-results").glob("*/results.json")
    data = json.loads(results.read_text())
    (item,) = data["items"]
    assert fingerprint(item, data["host"]) == item["baseline"]["history"]["fingerprint"]
    second = _gate(run_mlperf, store)
    second.assert_outcomes(skipped=1)
    second.stdout.fnmatch_lines(["*inconclusive: history has 1 of 5*"])
    assert "regressed" not in second.stdout.str()
    assert [b["status"] for b in _statuses(pytester)] == ["inconclusive", "inconclusive"]
    # edit the history: every good record 1000x the value, and enough of them
    conn = sqlite3.connect(store)
    conn.execute("UPDATE mlperf_history_records SET value = value * 1000")
    for i, factor in enumerate((1.01, 0.99, 1.02)):
        conn.execute(
            "INSERT INTO mlperf_history_sessions SELECT 'copy' || ?, ref, commit_sha, started,"
            " finished, good, interrupted, backend, system, plugin_version, source, added_at"
            " FROM mlperf_history_sessions LIMIT 1",
            (i,),
        )
        conn.execute(
            "INSERT INTO mlperf_history_records (run_id, item_key, ref, fingerprint_id,"
            " fingerprint, value, unit, compared, higher_is_better, good, outcome, validity,"
            " recorded_at, commit_sha, samples, record) SELECT 'copy' || ?, item_key, ref,"
            " fingerprint_id, fingerprint, value * ?, unit, compared, higher_is_better, good,"
            " outcome, validity, recorded_at, commit_sha, samples, record"
            " FROM mlperf_history_records LIMIT 1",
            (i, factor),
        )
    conn.commit()
    conn.close()
    third = _gate(run_mlperf, store)
    third.assert_outcomes(failed=1)
    third.stdout.fnmatch_lines(
        ["*throughput regressed *: -*% against the mean of the last 5*can detect >= *% here*"]
    )
    assert third.ret == 1
    with open_store(store) as opened:  # the regressed session is kept, never as good
        newest = opened.sessions(limit=1)[0]
        assert not newest.good
        assert len(opened.records("tiny-99/Offline/performance", None, "main")) == 5


def test_a_damaged_or_unreachable_store_is_a_usage_error_before_anything_runs(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    damaged = pytester.path / "damaged.sqlite"
    damaged.write_bytes(b"garbage, not SQLite" * 200)
    result = run_mlperf("--mlperf-benchmarks=tiny", f"--mlperf-history={damaged}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--mlperf-history: history store {damaged}: cannot*"])
    result = run_mlperf(
        "--mlperf-benchmarks=tiny", "--mlperf-history=postgresql://x@/db?host=/nonexistent-dir"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mlperf-history: history store postgresql://*cannot connect*"])
    assert not (pytester.path / "mlperf-results").exists()  # nothing ran


def test_settings_refs_from_ci_and_bad_values(tmp_path: Path) -> None:
    pr = {"GITHUB_HEAD_REF": "feature", "GITHUB_REF_NAME": "7/merge", "GITHUB_BASE_REF": "main"}
    s = parse_history_settings("h.sqlite", None, None, None, tmp_path, tmp_path, pr)
    assert s is not None and (s.ref, s.compare_ref, s.judge) == ("feature", "main", True)
    assert s.location == str(tmp_path / "h.sqlite")
    push = {"GITHUB_HEAD_REF": "", "GITHUB_REF_NAME": "main", "GITHUB_SHA": "abc"}
    s = parse_history_settings(None, None, None, None, tmp_path / "res", tmp_path, push)
    assert s is not None and (s.ref, s.compare_ref, s.commit) == ("main", "main", "abc")
    assert not s.judge and s.location == str(tmp_path / "res" / "history.sqlite")
    gitlab = {"CI_COMMIT_REF_NAME": "topic"}
    s = parse_history_settings("h.sqlite", None, "main", "4", tmp_path, tmp_path, gitlab)
    assert s is not None and (s.ref, s.compare_ref, s.window, s.min_samples) == (
        "topic",
        "main",
        4,
        4,
    )
    assert parse_history_settings("off", None, None, None, tmp_path, tmp_path, {}) is None
    with pytest.raises(ConfigError, match="history-window: '1'"):
        parse_history_settings("h.sqlite", None, None, "1", tmp_path, tmp_path, {})
    with pytest.raises(ConfigError, match="history-significance: '2'"):
        parse_history_settings("h", None, None, None, tmp_path, tmp_path, {}, significance="2")
    with pytest.raises(ConfigError, match="is a directory"):
        parse_history_settings(str(tmp_path), None, None, None, tmp_path, tmp_path, {})


def test_the_bench_slowdown_sleeps_its_factor_of_each_model_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MLPERF_BENCH_SLOWDOWN=3: each model call is followed by a sleep of twice its time."""
    from pytest_mlperf.backends.reference import sut

    ticks = [10.0, 10.5]  # the model call takes 0.5 s on this clock (then it stands still)
    slept: list[float] = []
    monkeypatch.setattr(
        "pytest_mlperf.backends.reference.sut.time.perf_counter",
        lambda: ticks.pop(0) if len(ticks) > 1 else ticks[0],
    )
    monkeypatch.setattr("pytest_mlperf.backends.reference.sut.time.sleep", slept.append)

    class Session:
        def run(self, _names: Any, feeds: Any) -> list[Any]:
            return [feeds]

    class Samples:
        def batch(self, indices: Any) -> Any:
            return indices

    monkeypatch.setenv(sut.SLOWDOWN_ENV, "3")
    engine = sut.Engine(Session(), Samples(), lambda outputs: outputs[0])  # type: ignore[arg-type]
    assert engine.infer([1, 2]) == [1, 2]  # type: ignore[arg-type]
    assert slept == [1.0]
    monkeypatch.setenv(sut.SLOWDOWN_ENV, "not a number")
    assert sut.Engine(Session(), Samples(), lambda o: o[0]).slowdown == 1.0  # type: ignore[arg-type]
