"""Compliance TEST01 on the reference backend: real LoadGen audit runs, pass and fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.backends.base import audit_config_text
from pytest_mlperf.catalog import default_dirs, load_catalog
from pytest_mlperf.compliance import (
    AccuracyMatch,
    PerformanceMatch,
    audit_settings,
    judge_compliance,
    load_tests,
    verify_accuracy,
    verify_performance,
)
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.results.loadgen import ParsedLog, Reason
from tests.conftest import TINY_DIR, RunMlperf, load_results

CHEATING_CONFTEST = f"""
from pathlib import Path

import numpy as np

from pytest_mlperf.backends.reference import ReferenceBackend
from pytest_mlperf.backends.reference.backend import precision_for


def pytest_mlperf_benchmark_dirs(config):
    return [Path({str(TINY_DIR)!r})]


class Cheating(ReferenceBackend):
    '''Answers zeros in performance mode when it is not asked to log them (a SUT that skips
    inference in performance mode: what TEST01 exists to catch); the audit run samples it.'''

    name = "cheating"

    def change(self, rows):
        return np.zeros_like(rows)

    def run(self, request, progress):
        if request.mode != "performance":
            return super().run(request, progress)
        precision = precision_for(request.benchmark, request.config_ver)
        engine = self._engine(request.benchmark, progress, precision)
        real = engine.respond
        engine.respond = lambda outputs: self.change(real(outputs))
        try:
            return super().run(request, progress)
        finally:
            engine.respond = real


class Jittery(Cheating):
    '''Computes honestly, but not bit-exactly: every logit one float32 ulp off in
    performance mode (as a GPU whose kernels depend on the batch can be).'''

    name = "jittery"

    def change(self, rows):
        return np.nextafter(rows, np.float32(np.inf)).astype(rows.dtype)


def pytest_mlperf_backend_names():
    return ["cheating", "jittery"]


def pytest_mlperf_make_backend(name, run_config, config):
    kind = {{"cheating": Cheating, "jittery": Jittery}}.get(name)
    if kind is not None:
        return kind(run_config.cache_dir, run_config.calibrate, run_config.threads)
    return None
"""


def _run_sut(
    pytester: pytest.Pytester, model_cache: Path, backend: str, *args: str
) -> pytest.RunResult:
    """tiny Offline with TEST01 and ``--mlperf-fast`` on one of CHEATING_CONFTEST's SUTs."""
    pytester.makeconftest(CHEATING_CONFTEST)
    return pytester.runpytest(
        f"--mlperf-cache-dir={model_cache}",
        f"--mlperf-backend={backend}",
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline",
        "--mlperf-compliance=TEST01",
        "--mlperf-fast",
        *args,
    )


def _items(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    return {i["nodeid"].split("::")[-1]: i for i in load_results(pytester.path)["items"]}


def test_test01_passes_on_the_reference_backend(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-compliance=TEST01",
        "--mlperf-fast",
        "-m",
        "mlperf",
        "--html=report.html",
        "--junitxml=junit.xml",
    )
    result.assert_outcomes(passed=4)
    items = _items(pytester)
    assert list(items) == [
        "tiny-99[Offline-performance]",
        "tiny-99[Offline-TEST01]",
        "tiny-99[SingleStream-performance]",
        "tiny-99[SingleStream-TEST01]",
    ]
    for scenario in ("Offline", "SingleStream"):
        item = items[f"tiny-99[{scenario}-TEST01]"]
        assert item["mode"] == "TEST01"
        comp = item["compliance"]
        assert comp["passed"] is True
        assert comp["audit_config"] == {
            "mode": 2,
            "accuracy_log_rng_seed": 720381539243781796,
            "accuracy_log_sampling_target": 4096,
        }
        acc = comp["accuracy"]
        assert acc["matched"] == acc["sampled"] > 0 and acc["mismatched"] == 0
        # the session's performance run is the one compared; the accuracy run is the TEST01
        # item's own (the reference accuracy mode runs the evaluation set, not this QSL)
        perf_item = items[f"tiny-99[{scenario}-performance]"]
        assert comp["runs"]["performance_dir"] == perf_item["log_dir"]
        assert comp["runs"]["accuracy"] == "run"
        audit = Path(comp["runs"]["audit_dir"])
        assert (audit / "audit.config").read_text() == audit_config_text(comp["audit_config"])
        assert "Found Audit Config file" in (audit / "mlperf_log_detail.txt").read_text()
        assert item["loadgen"]["effective_accuracy_log_sampling_target"] == 4096
        checks = {c["name"]: c for c in item["verdict"]["checks"]}
        assert checks["audit_config"]["passed"] and checks["TEST01:accuracy"]["passed"]
        # a --mlperf-fast run is too short to compare performance: shown, not judged
        assert checks["TEST01:performance"]["skipped"] is True
        assert comp["performance"]["judged"] is False
        assert comp["performance"]["ratio"] > 0
    # the HTML report links the three runs each compliance item compared
    html = (pytester.path / "report.html").read_text()
    assert html.count("mlperf-compliance-runs") == 2
    perf = Path(items["tiny-99[Offline-performance]"]["log_dir"]).relative_to(pytester.path)
    assert str(perf) in html and "TEST01/accuracy" in html and "TEST01/audit" in html
    assert "TEST01: " in html and " sampled responses equal the accuracy run" in html
    # JUnit properties a CI system can chart
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="mlperf/tiny-99/Offline/TEST01/compliance_passed" value="True"' in junit
    sampled = items["tiny-99[Offline-TEST01]"]["compliance"]["accuracy"]["sampled"]
    assert (
        f'name="mlperf/tiny-99/Offline/TEST01/compliance_accuracy_matched" value="{sampled}"'
        in junit
    )
    assert 'name="mlperf/tiny-99/Offline/TEST01/compliance_performance_ratio"' in junit
    # no other run of the session read an audit.config
    for name in ("tiny-99[Offline-performance]", "tiny-99[SingleStream-performance]"):
        assert items[name]["loadgen"]["effective_accuracy_log_sampling_target"] == 0


def test_test01_fails_a_sut_that_answers_differently_in_performance_mode(
    pytester: pytest.Pytester, model_cache: Path
) -> None:
    result = _run_sut(pytester, model_cache, "cheating", "--mlperf-mode=accuracy")
    # the accuracy item is honest (accuracy mode): only the audit catches the cheat
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*TEST01:accuracy*0 of * sampled responses equal*FAIL*"])
    item = _items(pytester)["tiny-99[Offline-TEST01]"]
    acc = item["compliance"]["accuracy"]
    assert acc["sampled"] > 0 and acc["mismatched"] == acc["sampled"] and acc["matched"] == 0
    examples = acc["mismatched_examples"]
    assert len(examples) == 5 and len(set(examples)) == 5
    assert item["compliance"]["passed"] is False
    assert item["verdict"]["outcome"] == "failed"
    assert any("TEST01:accuracy" in r for r in item["verdict"]["reasons"])
    # part III: the zeros score far below the accuracy run's answers to the same samples
    part3 = item["compliance"]["part3"]
    assert part3["metric"] == "F1" and part3["samples"] > 0 and part3["passed"] is False
    assert part3["baseline"] > 90 and part3["compliance"] < part3["baseline"] * 0.5
    assert part3["tolerance"] == 0.01
    result.stdout.fnmatch_lines(
        ["*part III: F1 of the audit run's answers to the * sampled*limit 1 %*"]
    )


def test_test01_part_three_accepts_answers_that_are_not_bit_exact(
    pytester: pytest.Pytester, model_cache: Path
) -> None:
    result = _run_sut(pytester, model_cache, "jittery")
    result.assert_outcomes(passed=2)
    comp = _items(pytester)["tiny-99[Offline-TEST01]"]["compliance"]
    acc, part3 = comp["accuracy"], comp["part3"]
    assert acc["mismatched"] == acc["sampled"] > 0  # no response is byte-equal
    assert part3["passed"] is True and part3["samples"] > 0
    assert part3["delta"] <= 0.01
    assert part3["compliance"] == pytest.approx(part3["baseline"], rel=0.01)
    workdir = Path(comp["runs"]["audit_dir"]) / "part3"
    baseline = json.loads((workdir / "mlperf_log_accuracy_baseline.json").read_text())
    assert len(baseline) == part3["samples"]  # the accuracy run's answers to the same samples
    assert comp["passed"] is True


def test_compliance_option_errors(run_mlperf: RunMlperf, tmp_path: Path) -> None:
    bad = run_mlperf("--mlperf-benchmarks=tiny", "--mlperf-compliance=TEST04")
    assert bad.ret == 4
    bad.stderr.fnmatch_lines(["*--mlperf-compliance: unknown test 'TEST04'; valid: TEST01, off*"])
    # a benchmark whose data does not list the test
    raw = json.loads((TINY_DIR / "tiny.json").read_text())
    del raw["compliance"]
    (tmp_path / "tiny.json").write_text(json.dumps(raw))
    catalog = load_catalog([tmp_path])
    from pytest_mlperf.compliance import parse_tests

    with pytest.raises(ConfigError, match="TEST01 does not apply to tiny .tiny.json has no"):
        parse_tests("TEST01", [catalog.benchmark("tiny-99")])
    assert parse_tests("off", [catalog.benchmark("tiny-99")]) == ()


def test_shipped_audit_settings_are_mlcommons_v41() -> None:
    catalog = load_catalog(default_dirs())
    assert (
        audit_settings("TEST01", catalog.benchmark("bert-99"))["accuracy_log_sampling_target"]
        == 4096
    )
    assert (
        audit_settings("TEST01", catalog.benchmark("3d-unet-99"))["accuracy_log_sampling_target"]
        == 64
    )
    assert load_tests()["TEST01"]["audit"]["accuracy_log_rng_seed"] == 720381539243781796
    assert audit_config_text({"mode": 2}).splitlines()[-1] == "*.*.mode = 2"


def _log(path: Path, rows: list[tuple[int, str]]) -> Path:
    entries = [json.dumps({"seq_id": i, "qsl_idx": q, "data": d}) for i, (q, d) in enumerate(rows)]
    path.write_text("[\n" + ",\n".join(entries) + "\n]\n")
    return path


def test_verify_accuracy_counts(tmp_path: Path) -> None:
    acc = _log(tmp_path / "acc.json", [(0, "AA"), (1, "BB"), (2, "CC")])
    same = _log(tmp_path / "a.json", [(2, "CC"), (0, "AA"), (2, "CC")])
    match = verify_accuracy(acc, same)
    assert (match.sampled, match.matched, match.mismatched, match.missing) == (3, 3, 0, 0)
    assert match.passed
    other = _log(tmp_path / "b.json", [(1, "B0"), (7, "AA")])
    match = verify_accuracy(acc, other)
    assert (match.matched, match.mismatched, match.missing) == (0, 1, 1)
    assert not match.passed and match.mismatched_examples == [1]
    # nothing to compare is not a pass
    assert not verify_accuracy(acc, _log(tmp_path / "c.json", [(9, "AA")])).passed


def _perf(scenario: str, value: float, **loadgen: Any) -> ParsedLog:
    unit = "ns" if scenario in ("SingleStream", "MultiStream") else "samples/s"
    return ParsedLog(
        source="x",
        scenario=scenario,
        mode="performance",
        result_validity="VALID",
        metric_value=value,
        unit=unit,
        loadgen=dict(loadgen),
    )


@pytest.mark.parametrize(
    ("scenario", "ref", "audit", "passed"),
    [
        ("Offline", 1000.0, 905.0, True),
        ("Offline", 1000.0, 899.0, False),
        ("Offline", 1000.0, 1101.0, False),
        ("SingleStream", 150_000.0, 175_000.0, True),  # <= 0.2 ms: 20 %
        ("SingleStream", 300_000.0, 340_000.0, False),  # above: 10 %
    ],
)
def test_verify_performance_tolerances(
    scenario: str, ref: float, audit: float, passed: bool
) -> None:
    key = "early_stopping_latency_ss" if scenario == "SingleStream" else "x"
    match = verify_performance(
        "TEST01",
        _perf(scenario, 1.0, **{key: ref}) if key != "x" else _perf(scenario, ref),
        _perf(scenario, 1.0, **{key: audit}) if key != "x" else _perf(scenario, audit),
        fast=False,
    )
    assert match.passed is passed, match


def test_verify_performance_problems() -> None:
    ref = _perf("Server", 500.0, effective_target_latency_ns=130_000_000)
    audit = _perf("Server", 500.0, effective_target_latency_ns=100_000_000)
    match = verify_performance("TEST01", ref, audit, fast=False)
    assert not match.passed and "Server target latency differs" in match.problems[0]
    invalid = _perf("Offline", 500.0)
    invalid.result_validity = "INVALID"
    invalid.invalid_reasons = [Reason("min_duration_not_met", "x")]
    assert not verify_performance("TEST01", _perf("Offline", 500.0), invalid, fast=False).passed
    # a shortened run's INVALID is excused under --mlperf-fast, the figure is then not judged
    fast = verify_performance("TEST01", _perf("Offline", 500.0), invalid, fast=True)
    assert fast.problems == [] and fast.judged is False


def test_compliance_passed_is_the_verdicts_audit_config_included() -> None:
    """Issue 26 point 2: an audit run that ignored audit.config failed the item while
    ``compliance.passed`` (JUnit ``compliance_passed``, the HTML's "passed") said True."""
    values = {"accuracy_log_sampling_target": 1024, "mode": 2}
    accuracy = AccuracyMatch(sampled=10, matched=10)
    performance = PerformanceMatch(reference=500.0, audit=500.0, unit="samples/s", tolerance=0.1)
    audit = _perf("Offline", 500.0)  # logs no effective_accuracy_log_sampling_target
    verdict, record = judge_compliance("TEST01", values, {}, audit, accuracy, performance)
    assert verdict.outcome == "failed" and verdict.reasons[0].startswith("audit_config:")
    assert record["passed"] is False
    applied = _perf("Offline", 500.0, effective_accuracy_log_sampling_target=1024)
    verdict, record = judge_compliance("TEST01", values, {}, applied, accuracy, performance)
    assert verdict.outcome == "passed" and record["passed"] is True


def test_a_crashed_compliance_item_is_recognised() -> None:
    from pytest_mlperf.identity import ItemId

    match = ItemId.parse("mlperf::tiny-99[Offline-TEST01]")
    assert match is not None and (match.benchmark, match.scenario, match.mode) == (
        "tiny-99",
        "Offline",
        "TEST01",
    )
