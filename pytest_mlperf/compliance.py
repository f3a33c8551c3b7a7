"""Compliance TEST01: accuracy in performance mode, verified on the logs of three runs.

A TEST01 item runs (or reuses from this session) the performance run and an accuracy run of
its benchmark×scenario, then the audit run: a performance run whose ``audit.config`` makes
LoadGen log a random sample of its responses. It passes when every sampled response equals
the accuracy run's response for the same sample (``qsl_idx``) and the audit run's
performance is within the round's tolerance of the performance run's, as MLCommons'
``verify_accuracy.py`` and ``verify_performance.py`` decide. The audit settings and the
tolerances are data: ``benchmarks/compliance/<round>.json`` and each benchmark's
``compliance`` section.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlperf._paths import data_dir
from pytest_mlperf.catalog import Benchmark
from pytest_mlperf.errors import ConfigError, DataError
from pytest_mlperf.results.loadgen import ParsedLog
from pytest_mlperf.schemas import validate
from pytest_mlperf.verdict import Check, Verdict, format_metric

if TYPE_CHECKING:
    from pytest_mlperf.backends.base import Backend, Progress, RunOutcome, RunRequest

ROUND = "v4.1"
AUDIT_FILE = "audit.config"
#: Sampled responses named in a failure message at most.
_EXAMPLES = 5


@cache
def load_tests(round_: str = ROUND) -> dict[str, Any]:
    """``benchmarks/compliance/<round>.json``, validated: test name → its rules."""
    path = data_dir("benchmarks") / "compliance" / f"{round_}.json"
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read compliance rules: {exc}") from exc
    validate(raw, "compliance", str(path))
    return dict(raw["tests"])


def parse_tests(value: str, benchmarks: Sequence[Benchmark]) -> tuple[str, ...]:
    """``--mlperf-compliance``: a comma list of tests, each applying to every benchmark."""
    known = load_tests()
    names: list[str] = []
    for part in value.split(","):
        name = part.strip().upper()
        if name in ("", "OFF", "NONE"):
            continue
        if name not in known:
            raise ConfigError(
                f"--mlperf-compliance: unknown test {part.strip()!r}; valid: {', '.join(known)}, off"
            )
        for bench in benchmarks:
            if name not in (bench.raw.get("compliance") or {}):
                applies = [b.name for b in benchmarks if name in (b.raw.get("compliance") or {})]
                raise ConfigError(
                    f"--mlperf-compliance: {name} does not apply to {bench.name} "
                    f"({bench.source.name} has no compliance.{name})"
                    + (f"; it applies to {', '.join(applies)}" if applies else "")
                )
        if name not in names:
            names.append(name)
    return tuple(names)


def audit_settings(test: str, bench: Benchmark) -> dict[str, int]:
    """The audit.config values for ``bench``: the round's, then the benchmark's own."""
    values = {k: int(v) for k, v in load_tests()[test]["audit"].items()}
    values.update({k: int(v) for k, v in bench.raw["compliance"][test].items()})
    return values


def audit_config_text(values: Mapping[str, int]) -> str:
    """An ``audit.config`` LoadGen reads: ``*.*.key = value`` for every model and scenario."""
    lines = ["# written by pytest-mlperf for a compliance audit run"]
    lines += [f"*.*.{key} = {value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@dataclass
class AccuracyMatch:
    """The audit run's sampled responses against the accuracy run's (verify_accuracy)."""

    sampled: int = 0
    matched: int = 0
    mismatched: int = 0
    missing: int = 0
    mismatched_examples: list[int] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every sampled response equals the accuracy run's, and at least one was compared."""
        return self.mismatched == 0 and self.matched > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "passed": self.passed}


def verify_accuracy(accuracy_log: Path, audit_log: Path) -> AccuracyMatch:
    """Compare the audit log's responses with the accuracy log's, sample by sample.

    The audit log is small (its sampling target); the accuracy log is streamed, so its
    size does not matter. A sample logged twice by the audit run is compared each time.
    """
    from pytest_mlperf.accuracy.reader import iter_accuracy_log

    sampled: dict[int, list[bytes]] = {}
    count = 0
    for entry in iter_accuracy_log(audit_log):
        sampled.setdefault(entry.qsl_idx, []).append(entry.data)
        count += 1
    match = AccuracyMatch(sampled=count)
    seen: set[int] = set()
    for entry in iter_accuracy_log(accuracy_log):
        if entry.qsl_idx in seen or entry.qsl_idx not in sampled:
            continue
        seen.add(entry.qsl_idx)
        for data in sampled[entry.qsl_idx]:
            if data == entry.data:
                match.matched += 1
            else:
                match.mismatched += 1
                if len(match.mismatched_examples) < _EXAMPLES:
                    match.mismatched_examples.append(entry.qsl_idx)
    match.missing = sum(len(v) for k, v in sampled.items() if k not in seen)
    return match


def score(parsed: ParsedLog) -> tuple[float | None, str | None]:
    """The figure verify_performance.py compares: throughput, or the early-stopping latency."""
    scenario = parsed.scenario
    if scenario == "SingleStream":
        value = parsed.loadgen.get("early_stopping_latency_ss")
        if isinstance(value, int | float):
            return float(value), "ns"
    if scenario == "MultiStream":
        value = parsed.loadgen.get("early_stopping_latency_ms")
        if isinstance(value, int | float):
            return float(value), "ns"
    return parsed.metric_value, parsed.unit


@dataclass
class PerformanceMatch:
    """The audit run's performance against the performance run's (verify_performance)."""

    reference: float | None
    audit: float | None
    unit: str | None
    tolerance: float
    problems: list[str] = field(default_factory=list)
    #: False for --mlperf-fast runs: sub-second runs are too short to compare
    judged: bool = True

    @property
    def ratio(self) -> float | None:
        """audit / reference."""
        if self.reference in (None, 0) or self.audit is None:
            return None
        return self.audit / self.reference

    @property
    def passed(self) -> bool:
        """Within the tolerance, both ways, and nothing else wrong."""
        ratio = self.ratio
        return not self.problems and ratio is not None and abs(ratio - 1.0) < self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "ratio": self.ratio, "passed": self.passed}


def verify_performance(
    test: str, reference: ParsedLog, audit: ParsedLog, fast: bool
) -> PerformanceMatch:
    """The audit run's score within the tolerance of the performance run's."""
    rules = load_tests()[test]
    ref_value, unit = score(reference)
    audit_value, _ = score(audit)
    tolerance = float(rules["performance_tolerance"])
    for relaxed in rules["relaxed"]:
        if reference.scenario == relaxed["scenario"] and (ref_value or 0) <= relaxed["max_ns"]:
            tolerance = float(relaxed["tolerance"])
    match = PerformanceMatch(ref_value, audit_value, unit, tolerance, judged=not fast)
    if reference.scenario != audit.scenario:
        match.problems.append(f"scenarios differ: {reference.scenario} vs {audit.scenario}")
    for name, parsed in (("performance", reference), ("audit", audit)):
        excused = fast and all(r.shortened_run for r in parsed.invalid_reasons)
        if parsed.result_validity != "VALID" and not excused:
            match.problems.append(f"the {name} run is {parsed.result_validity or 'without result'}")
    if reference.scenario == "Server":
        key = "effective_target_latency_ns"
        if reference.loadgen.get(key) != audit.loadgen.get(key):
            match.problems.append(
                f"Server target latency differs: {reference.loadgen.get(key)} vs "
                f"{audit.loadgen.get(key)}"
            )
    return match


def audit_applied(audit: ParsedLog, values: Mapping[str, int]) -> list[str]:
    """What the audit run's detail log says differently from ``audit.config`` (empty: applied)."""
    wrong = []
    for key, want in values.items():
        if key == "mode":
            if audit.mode != "performance":
                wrong.append(f"mode {audit.mode} (audit.config: performance)")
            continue
        logged = audit.loadgen.get(f"effective_{key}")
        if logged != want:
            wrong.append(f"{key} {logged} (audit.config: {want})")
    return wrong


def checks(
    test: str,
    values: Mapping[str, int],
    audit: ParsedLog,
    accuracy: AccuracyMatch,
    performance: PerformanceMatch,
) -> list[Check]:
    """The verdict lines of a compliance item."""
    wrong = audit_applied(audit, values)
    out = [
        Check(
            "audit_config",
            "; ".join(wrong) or "applied",
            "LoadGen logged the audit.config settings",
            not wrong,
            ""
            if not wrong
            else "the run did not read audit.config: it must be in the directory LoadGen runs from",
        )
    ]
    detail = f"{accuracy.missing} sampled not in the accuracy log" if accuracy.missing else ""
    if accuracy.mismatched:
        detail = (
            f"first differing qsl_idx: {', '.join(map(str, accuracy.mismatched_examples))}; "
            "the SUT answers differently in performance mode (or is not deterministic: then "
            f"{test} part III, the accuracy of the sampled responses, decides)"
        )
    out.append(
        Check(
            f"{test}:accuracy",
            f"{accuracy.matched} of {accuracy.sampled} sampled responses equal, "
            f"{accuracy.mismatched} differ",
            "all equal the accuracy run's (at least one)",
            accuracy.passed,
            detail,
        )
    )
    ratio = performance.ratio
    detail = "; ".join(performance.problems)
    if not performance.judged:
        detail = "not judged: --mlperf-fast runs are too short to compare performance" + (
            f" ({detail})" if detail else ""
        )
    out.append(
        Check(
            f"{test}:performance",
            f"{format_metric(performance.audit, performance.unit)} vs "
            f"{format_metric(performance.reference, performance.unit)}"
            + (f" ({(ratio - 1) * 100:+.1f} %)" if ratio is not None else ""),
            f"within ±{performance.tolerance * 100:g} % of the performance run",
            performance.passed or not performance.judged,
            detail,
            skipped=not performance.judged,
        )
    )
    return out


def compliance_record(
    test: str,
    values: Mapping[str, int],
    runs: Mapping[str, str],
    accuracy: AccuracyMatch,
    performance: PerformanceMatch,
) -> dict[str, Any]:
    """The record's ``compliance`` object."""
    return {
        "test": test,
        "round": ROUND,
        "audit_config": dict(values),
        "runs": dict(runs),
        "accuracy": accuracy.to_dict(),
        "performance": performance.to_dict(),
        "passed": accuracy.passed and (performance.passed or not performance.judged),
    }


def run_compliance(
    backend: Backend, request: RunRequest, earlier: Mapping[str, Path], progress: Progress
) -> tuple[RunOutcome, ParsedLog, Verdict, dict[str, Any]]:
    """Run a compliance item (``request.mode`` is the test) and verify it.

    ``earlier``: log dirs of this session's performance/accuracy runs of the same item. The
    performance run is reused; the accuracy run only where the backend's accuracy mode runs
    the performance QSL (``accuracy_runs_performance_qsl``), so that ``qsl_idx`` means
    the same sample in both logs.
    """
    from pytest_mlperf.results.loadgen import ACCURACY, parse_dir

    test = request.mode
    values = audit_settings(test, request.benchmark)
    seconds = 0.0

    def run(mode: str, sub: str, audit: Mapping[str, int] | None = None) -> Path:
        nonlocal seconds
        outdir = request.outdir / sub
        outdir.mkdir()
        sub_request = replace(request, mode=mode, outdir=outdir, compliance=test, audit=audit)
        outcome = backend.run(sub_request, progress)
        seconds += outcome.run_seconds
        return outcome.log_dir

    runs: dict[str, str] = {}
    perf_dir = earlier.get("performance")
    runs["performance"] = "reused " + str(perf_dir) if perf_dir else "run"
    if perf_dir is None:
        perf_dir = run("performance", "performance")
    acc_dir = earlier.get("accuracy")
    if acc_dir is None or not getattr(backend, "accuracy_runs_performance_qsl", False):
        acc_dir = run("accuracy", "accuracy")
        runs["accuracy"] = "run"
    else:
        runs["accuracy"] = "reused " + str(acc_dir)
    outdir = request.outdir / "audit"
    outdir.mkdir()
    audit_request = replace(
        request, mode="performance", outdir=outdir, compliance=test, audit=values
    )
    outcome = backend.run(audit_request, progress)
    outcome.run_seconds += seconds
    runs["audit"] = "run"
    audit = parse_dir(outcome.log_dir)
    if outcome.compare is not None:
        audit.warnings.extend(outcome.compare(audit))
    accuracy = verify_accuracy(acc_dir / ACCURACY, outcome.log_dir / ACCURACY)
    performance = verify_performance(test, parse_dir(perf_dir), audit, request.fast)
    progress(
        f"{request.variant.name} {request.scenario} {test}: {accuracy.matched} of "
        f"{accuracy.sampled} sampled responses equal the accuracy run's, "
        f"{accuracy.mismatched} differ; performance ratio "
        f"{performance.ratio if performance.ratio is None else round(performance.ratio, 3)}"
    )
    runs.update(
        performance_dir=str(perf_dir), accuracy_dir=str(acc_dir), audit_dir=str(outcome.log_dir)
    )
    verdict = Verdict.from_checks(checks(test, values, audit, accuracy, performance))
    return outcome, audit, verdict, compliance_record(test, values, runs, accuracy, performance)
