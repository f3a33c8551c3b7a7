"""Submission-readiness rules (v4.1 submission checker), each failing on purpose."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.checks import OK, Check, Outcome, Verdict
from pytest_mlperf.errors import DataError
from pytest_mlperf.results.loadgen import parse_dir
from pytest_mlperf.submission import (
    apply_to_verdict,
    check_accuracy_dir,
    check_item,
    load_rules,
    load_rules_file,
    stage_accuracy,
)
from tests.conftest import RunMlperf

RULES = load_rules()
SEEDS = dict(RULES["seeds"])


def server_log(**change: Any) -> dict[str, Any]:
    """What a good bert-99 Server run logs (the keys the rules read)."""
    log: dict[str, Any] = {
        **SEEDS,
        "effective_min_duration_ms": 600000,
        "result_min_duration_met": True,
        "result_query_count": 300000,
        "effective_performance_sample_count": 10833,
        "early_stopping_met": True,
        "effective_target_qps": 500.0,
        "result_completed_samples_per_sec": 499.0,
        "result_99.00_percentile_latency_ns": 100_000_000,
        "effective_target_latency_ns": 130_000_000,
        "result_validity": "VALID",
    }
    log.update(change)
    return log


def failed(
    log: dict[str, Any], scenario: str = "Server", errors: list[str] | None = None
) -> dict[str, Any]:
    results = check_item(RULES, "bert-99", scenario, "performance", log, errors or [])
    return {r.name: r for r in results if not r.passed}


def test_a_good_server_run_meets_every_rule() -> None:
    results = check_item(RULES, "bert-99", "Server", "performance", server_log(), [])
    assert {r.name for r in results} == {
        "validity",
        "loadgen_errors",
        "seeds",
        "min_duration",
        "performance_sample_count",
        "early_stopping",
        "latency_bound",
    }  # no min_queries: the checker judges Server by early stopping instead
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_wrong_seed() -> None:
    bad = failed(server_log(effective_qsl_rng_seed=2085463073848966840))
    assert set(bad) == {"seeds"}
    assert "qsl_rng_seed=2085463073848966840" in bad["seeds"].value
    assert "qsl_rng_seed=3066443479025735752" in bad["seeds"].expected


def test_short_run() -> None:
    bad = failed(server_log(effective_min_duration_ms=1000, result_min_duration_met=False))
    assert set(bad) == {"min_duration"}
    assert bad["min_duration"].value.startswith("min_duration 1000 ms")
    assert bad["min_duration"].expected == ">= 600000 ms (and met)"


def test_min_queries_only_where_the_checker_applies_it() -> None:
    # Server and SingleStream use early stopping: few queries are not a min_queries failure
    assert failed(server_log(result_query_count=1000)) == {}
    assert failed(server_log(result_query_count=500), "SingleStream") == {}
    offline = failed(
        {**server_log(), "effective_samples_per_query": 5000, "result_samples_per_second": 250.0},
        "Offline",
    )
    assert offline["min_queries"].expected == ">= 10833 samples per query"
    assert offline["min_queries"].fix == "offline_expected_qps = 275.0"


def test_early_stopping_not_met() -> None:
    bad = failed(server_log(early_stopping_met=False))
    assert set(bad) == {"early_stopping"} and bad["early_stopping"].value == "not met"


def test_latency_bound_reads_the_effective_target_latency() -> None:
    raised = failed(server_log(effective_target_latency_ns=200_000_000))
    assert set(raised) == {"latency_bound"}
    assert raised["latency_bound"].value.startswith("target latency 200.000 ms")
    assert raised["latency_bound"].expected == "<= 130.000 ms (Server)"
    # a p99 over the bound is LoadGen's INVALID: the validity rule, with the next target
    late = failed(
        server_log(result_validity="INVALID", **{"result_99.00_percentile_latency_ns": 150e6})
    )
    assert set(late) == {"validity"}
    # 500 × 130/150 × 0.95 = 411.67
    assert late["validity"].fix.startswith("server_target_qps = 411.7 ")


def test_ready_requires_a_valid_result() -> None:
    bad = failed(server_log(result_validity="INVALID"))
    assert set(bad) == {"validity"} and bad["validity"].value == "INVALID"
    explicit = check_item(RULES, "bert-99", "Server", "performance", server_log(), [], "INVALID")
    assert not next(r for r in explicit if r.name == "validity").passed


def test_equal_issue_mode_for_3d_unet() -> None:
    log = {
        **server_log(),
        "effective_samples_per_query": 43,
        "effective_performance_sample_count": 43,
        "effective_sample_concatenate_permutation": False,
    }
    results = check_item(RULES, "3d-unet-99", "Offline", "performance", log, [])
    # no measurement files to read: the checker's verdict is unknown, not failed
    [unknown] = [r for r in results if not r.ok]
    assert unknown.name == "equal_issue" and unknown.skipped
    assert "3d-unet.Offline.sample_concatenate_permutation = 1" in unknown.fix
    log["effective_sample_concatenate_permutation"] = True
    single = check_item(RULES, "3d-unet-99", "SingleStream", "performance", log, [])
    assert all(r.passed for r in single) and "min_queries" not in {r.name for r in single}
    bert = check_item(
        RULES,
        "bert-99",
        "Offline",
        "performance",
        {**log, "effective_samples_per_query": 10833, "effective_performance_sample_count": 10833},
        [],
    )
    assert "equal_issue" not in {r.name for r in bert}


def test_performance_sample_count() -> None:
    bad = failed(server_log(effective_performance_sample_count=64))
    assert set(bad) == {"performance_sample_count"}
    assert (
        bad["performance_sample_count"].fix
        == "performance_sample_count_override = 10833 (or remove the override)"
    )


def test_loadgen_error() -> None:
    bad = failed(server_log(), errors=["error_invalid_config: bad"])
    assert set(bad) == {"loadgen_errors"} and "error_invalid_config" in bad["loadgen_errors"].value


def test_fail_and_warn_modes() -> None:
    results = check_item(
        RULES, "bert-99", "Server", "performance", server_log(early_stopping_met=False), []
    )
    passed = Verdict(Outcome.PASSED, [Check("validity", "VALID", "VALID", OK)])
    failing = apply_to_verdict(passed, results, "fail")
    assert failing.outcome == "failed"
    assert any(r.startswith("submission early_stopping: not met") for r in failing.reasons)
    warning = apply_to_verdict(passed, results, "warn")
    assert warning.outcome == "passed" and not warning.reasons
    assert any(c.name == "submission:early_stopping" for c in warning.checks)


def test_rules_file_is_validated(tmp_path: Path) -> None:
    raw = json.loads(json.dumps(RULES))
    raw["benchmarks"]["bert-99"]["min_queries"]["Sever"] = 5
    path = tmp_path / "v4.1.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(DataError, match="benchmarks/bert-99/min_queries"):
        load_rules_file(path)


def test_real_loadgen_run_fails_the_rules_it_breaks(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    args = ("--mlperf-benchmarks=tiny", "--mlperf-scenarios=Offline", "--mlperf-fast")
    result = run_mlperf(*args, "--mlperf-submission-checks=fail")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*submission:seeds*", "*submission:min_duration*"])
    [path] = (pytester.path / "mlperf-results").glob("*/tiny-99/Offline/performance/result.json")
    record = json.loads(path.read_text())
    rules = {r["rule"]: r for r in record["submission"]["rules"]}
    assert record["submission"]["ready"] is False
    assert not rules["seeds"]["passed"] and not rules["min_duration"]["passed"]
    assert rules["loadgen_errors"]["passed"]
    # the seeds the installed LoadGen's built-in mlperf.conf set are not v4.1's
    parsed = parse_dir(Path(record["log_dir"]))
    logged = {k: parsed.loadgen[k] for k in SEEDS}
    assert logged != SEEDS and all(isinstance(v, int) for v in logged.values())

    warn = run_mlperf(*args, "--mlperf-submission-checks=warn")
    warn.assert_outcomes(passed=1)
    bad = run_mlperf(*args, "--mlperf-submission-checks=maybe")
    assert bad.ret == 4
    bad.stderr.fnmatch_lines(["*--mlperf-submission-checks*'maybe'*valid: off, fail, warn*"])


def _accuracy_log(path: Path, entries: int) -> Path:
    """A LoadGen-shaped accuracy log of ``entries`` responses."""
    rows = [
        json.dumps({"seq_id": i, "qsl_idx": i % 97, "data": f"{i:08X}" * 8}) for i in range(entries)
    ]
    path.mkdir(parents=True, exist_ok=True)
    (path / "mlperf_log_accuracy.json").write_text("[\n" + ",\n".join(rows) + "\n]\n")
    return path


def test_staged_accuracy_dir_meets_the_accuracy_rules(tmp_path: Path) -> None:
    log_dir = _accuracy_log(tmp_path / "run", 2000)
    full = log_dir / "mlperf_log_accuracy.json"
    assert full.stat().st_size > 100_000
    staged = stage_accuracy(RULES, log_dir, tmp_path / "staged", {"F1": 88.5, "exact_match": 81.0})
    text = (staged / "accuracy.txt").read_text()
    assert text.splitlines()[0] == '{"exact_match": 81.0000, "f1": 88.5000}'
    assert f"hash={hashlib.sha256(full.read_bytes()).hexdigest()}" in text
    cut = (staged / "mlperf_log_accuracy.json").read_bytes()
    assert len(cut) <= 10240
    assert cut.startswith(full.read_bytes()[:4096]) and cut.endswith(full.read_bytes()[-4096:])
    rules = check_accuracy_dir(RULES, staged, full, "F1", 88.0)
    assert [(r.name, r.passed) for r in rules] == [
        ("accuracy_target", True),
        ("accuracy_hash", True),
        ("accuracy_log_truncated", True),
    ]
    # a figure below the target
    [target, _h, _t] = check_accuracy_dir(RULES, staged, full, "F1", 89.0)
    assert not target.passed and target.value == "F1 88.5" and target.expected == ">= 89"


def test_accuracy_rules_fail_on_purpose(tmp_path: Path) -> None:
    log_dir = _accuracy_log(tmp_path / "run", 2000)
    full = log_dir / "mlperf_log_accuracy.json"
    staged = stage_accuracy(RULES, log_dir, tmp_path / "staged", {"DICE": 0.86, "kidney_DICE": 0.9})
    assert (
        (staged / "accuracy.txt")
        .read_text()
        .startswith("Accuracy: mean = 0.86000, kidney = 0.9000, tumor = 0.0000\n")
    )
    txt = staged / "accuracy.txt"
    good = txt.read_text()

    def broken(rule: str) -> Any:
        [result] = [
            r for r in check_accuracy_dir(RULES, staged, full, "DICE", 0.85) if r.name == rule
        ]
        assert not result.passed, result
        return result

    # missing hash
    txt.write_text("\n".join(line for line in good.splitlines() if not line.startswith("hash=")))
    assert broken("accuracy_hash").value == "no hash= line in accuracy.txt"
    # a hash of another log (the run was redone after hashing): the checker only needs the
    # line, so the rule passes and says the mismatch
    txt.write_text(good.replace("hash=", "hash=0"))
    [other] = [
        r
        for r in check_accuracy_dir(RULES, staged, full, "DICE", 0.85)
        if r.name == "accuracy_hash"
    ]
    assert other.passed and "does NOT match the full log" in other.value and other.fix
    txt.write_text(good)
    # untruncated log in the accuracy directory
    shutil.copyfile(full, staged / "mlperf_log_accuracy.json")
    result = broken("accuracy_log_truncated")
    assert result.value == f"{full.stat().st_size} bytes" and result.expected == "<= 10240 bytes"
    # no figure in accuracy.txt
    txt.write_text(good.replace("Accuracy: mean", "mean"))
    assert broken("accuracy_target").value == "no DICE line in accuracy.txt"


def test_harness_accuracy_txt_is_kept_and_an_old_hash_replaced(tmp_path: Path) -> None:
    log_dir = _accuracy_log(tmp_path / "run", 10)
    (log_dir / "accuracy.txt").write_text('{"exact_match": 83.1, "f1": 90.2}\nhash=stale\n')
    staged = stage_accuracy(RULES, log_dir, tmp_path / "staged", {"F1": 1.0})
    lines = (staged / "accuracy.txt").read_text().splitlines()
    assert lines[0] == '{"exact_match": 83.1, "f1": 90.2}' and len(lines) == 2
    assert lines[1] != "hash=stale"
    # a small log is copied whole and is within the limit
    assert (staged / "mlperf_log_accuracy.json").read_bytes() == (
        log_dir / "mlperf_log_accuracy.json"
    ).read_bytes()
    assert all(
        r.passed
        for r in check_accuracy_dir(RULES, staged, log_dir / "mlperf_log_accuracy.json", "F1", 90.0)
    )


def test_accuracy_item_gets_a_staged_submission_dir(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline",
        "--mlperf-mode=accuracy",
        "--mlperf-fast",
        "--mlperf-submission-checks=fail",
    )
    [path] = (pytester.path / "mlperf-results").glob("*/tiny-99/Offline/accuracy/result.json")
    record = json.loads(path.read_text())
    rules = {r["rule"]: r for r in record["submission"]["rules"]}
    assert set(rules) == {
        "loadgen_errors",
        "accuracy_target",
        "accuracy_hash",
        "accuracy_log_truncated",
    }
    assert rules["accuracy_hash"]["passed"] and rules["accuracy_log_truncated"]["passed"]
    met = record["accuracy"]["value"] >= record["accuracy"]["threshold"]
    assert rules["accuracy_target"]["passed"] is met
    result.assert_outcomes(**({"passed": 1} if met else {"failed": 1}))
    staged = Path(record["submission"]["accuracy_dir"])
    assert staged == path.parent / "submission"
    full = Path(record["log_dir"]) / "mlperf_log_accuracy.json"
    assert (
        (staged / "accuracy.txt")
        .read_text()
        .endswith(f"hash={hashlib.sha256(full.read_bytes()).hexdigest()}\n")
    )
    assert (staged / "mlperf_log_detail.txt").is_file()
