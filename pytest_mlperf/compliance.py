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
from pytest_mlperf.backends.base import (
    AccuracyProvider,
    ComplianceIndexMap,
    reuses_accuracy_run,
)
from pytest_mlperf.catalog import Benchmark
from pytest_mlperf.checks import SKIP, Check, Verdict, decide, ok_if
from pytest_mlperf.display import format_metric
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.results.loadgen import ParsedLog
from pytest_mlperf.schemas import load_data_file

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
    raw = load_data_file(path, "compliance", "compliance rules")
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
                examples = match.mismatched_examples
                if len(examples) < _EXAMPLES and entry.qsl_idx not in examples:
                    examples.append(entry.qsl_idx)
    match.missing = sum(len(v) for k, v in sampled.items() if k not in seen)
    return match


@dataclass
class PartThree:
    """TEST01 part III: the accuracy of the sampled responses against the accuracy run's own
    responses to the same samples (for a SUT whose answers are not bit-exact)."""

    metric: str
    baseline: float
    compliance: float
    samples: int
    tolerance: float

    @property
    def delta(self) -> float:
        """|compliance − baseline| / baseline."""
        if self.baseline == 0:
            return 0.0 if self.compliance == 0 else float("inf")
        return abs(self.compliance - self.baseline) / abs(self.baseline)

    @property
    def passed(self) -> bool:
        """Within the tolerance, with at least one sample scored."""
        return self.samples > 0 and self.delta <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "delta": self.delta, "passed": self.passed}


def _restrict(dataset: Any, indices: set[int]) -> Any:
    """``dataset`` with only the samples ``indices`` (and, for SQuAD, their questions)."""
    from pytest_mlperf.accuracy.kits import KitsDataset
    from pytest_mlperf.accuracy.squad import SquadDataset

    if isinstance(dataset, KitsDataset):
        return replace(dataset, keys={i: k for i, k in dataset.keys.items() if i in indices})
    if isinstance(dataset, SquadDataset):
        features = {i: f for i, f in dataset.features.items() if i in indices}
        qids = {f.qid for f in features.values()}
        questions = {q: v for q, v in dataset.questions.items() if q in qids}
        return replace(dataset, features=features, questions=questions)
    raise TypeError(f"not a data set: {dataset!r}")


def _write_subset(source: Path, dest: Path, keep: Mapping[int, int]) -> None:
    """Write the first entry of each qsl_idx in ``keep`` from ``source``, renumbered to its
    value in ``keep``."""
    from pytest_mlperf.accuracy.reader import iter_accuracy_log

    seen: set[int] = set()
    rows: list[str] = []
    for entry in iter_accuracy_log(source):
        if entry.qsl_idx not in keep or entry.qsl_idx in seen:
            continue
        seen.add(entry.qsl_idx)
        rows.append(
            json.dumps(
                {"seq_id": len(rows), "qsl_idx": keep[entry.qsl_idx], "data": entry.data.hex()}
            )
        )
    dest.write_text("[\n" + ",\n".join(rows) + "\n]\n", encoding="utf-8")


def part_three(
    accuracy_log: Path,
    audit_log: Path,
    dataset_path: Path,
    index_map: Mapping[int, int] | None,
    workdir: Path,
    tolerance: float,
) -> PartThree:
    """Score the audit run's sampled responses and the accuracy run's responses to the same
    samples (its ``baseline``, as create_accuracy_baseline.sh makes it) on ``dataset_path``.

    ``index_map``: QSL index → the data set's index, where they differ (the reference
    backend's evaluation set holds a selection of the performance QSL); samples outside it
    cannot be scored and are left out of both.
    """
    from pytest_mlperf.accuracy.evaluate import evaluate_log, load_dataset_cached
    from pytest_mlperf.accuracy.reader import iter_accuracy_log

    sampled = {e.qsl_idx for e in iter_accuracy_log(audit_log)}
    keep = {
        i: (index_map[i] if index_map is not None else i)
        for i in sampled
        if index_map is None or i in index_map
    }
    workdir.mkdir(parents=True, exist_ok=True)
    baseline_log = workdir / "mlperf_log_accuracy_baseline.json"
    compliance_log = workdir / "mlperf_log_accuracy_compliance.json"
    _write_subset(accuracy_log, baseline_log, keep)
    _write_subset(audit_log, compliance_log, keep)
    dataset = _restrict(load_dataset_cached(dataset_path), set(keep.values()))
    base = evaluate_log(baseline_log, dataset)
    comp = evaluate_log(compliance_log, dataset)
    return PartThree(base.primary, base.value, comp.value, comp.scored, tolerance)


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

    @property
    def accepted(self) -> bool:
        """Passed, or not judged (a --mlperf-fast run)."""
        return self.passed or not self.judged

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


def accuracy_accepted(accuracy: AccuracyMatch, part3: PartThree | str | None) -> bool:
    """Every sampled response equal, or (some differing) part III within its limit."""
    if accuracy.mismatched and isinstance(part3, PartThree):
        return part3.passed
    return accuracy.passed


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
    part3: PartThree | str | None = None,
) -> list[Check]:
    """The verdict lines of a compliance item."""
    wrong = audit_applied(audit, values)
    out = [
        Check(
            "audit_config",
            "; ".join(wrong) or "applied",
            "LoadGen logged the audit.config settings",
            ok_if(not wrong),
            ""
            if not wrong
            else "the run did not read audit.config: it must be in the directory LoadGen runs from",
        )
    ]
    out.append(
        Check(
            f"{test}:accuracy",
            f"{accuracy.matched} of {accuracy.sampled} sampled responses equal, "
            f"{accuracy.mismatched} differ",
            "all equal the accuracy run's, or (part III) their accuracy within the limit",
            ok_if(accuracy_accepted(accuracy, part3)),
            _accuracy_detail(accuracy, part3),
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
            ok_if(performance.accepted) if performance.judged else SKIP,
            detail,
        )
    )
    return out


def _accuracy_detail(accuracy: AccuracyMatch, part3: PartThree | str | None) -> str:
    """The accuracy check's detail: what is missing, what differs, what part III found."""
    detail = f"{accuracy.missing} sampled not in the accuracy log" if accuracy.missing else ""
    if accuracy.mismatched:
        detail = f"first differing qsl_idx: {', '.join(map(str, accuracy.mismatched_examples))}"
        if isinstance(part3, PartThree):
            detail += (
                f"; part III: {part3.metric} of the audit run's answers to the {part3.samples} "
                f"sampled samples {part3.compliance:.4f} vs the accuracy run's "
                f"{part3.baseline:.4f}, Δ {part3.delta * 100:.3f} % "
                f"(limit {part3.tolerance * 100:g} %)"
                + ("" if part3.passed else ": the SUT answers differently in performance mode")
            )
        else:
            detail += f"; part III not run: {part3 or 'no data set'}"
    return detail


def compliance_record(
    test: str,
    values: Mapping[str, int],
    runs: Mapping[str, str],
    accuracy: AccuracyMatch,
    performance: PerformanceMatch,
    part3: PartThree | str | None = None,
    *,
    verdict: Verdict,
) -> dict[str, Any]:
    """The record's ``compliance`` object (``part3``: null, its figures, or why not run);
    ``passed`` is ``verdict``'s (:func:`judge_compliance`: :func:`decide` on every check,
    the audit_config one too), never a rule of its own."""
    return {
        "test": test,
        "round": ROUND,
        "audit_config": dict(values),
        "runs": dict(runs),
        "accuracy": accuracy.to_dict(),
        "part3": part3.to_dict() if isinstance(part3, PartThree) else part3,
        "performance": performance.to_dict(),
        "passed": verdict.passed,
    }


def judge_compliance(
    test: str,
    values: Mapping[str, int],
    runs: Mapping[str, str],
    audit: ParsedLog,
    accuracy: AccuracyMatch,
    performance: PerformanceMatch,
    part3: PartThree | str | None = None,
) -> tuple[Verdict, dict[str, Any]]:
    """The compliance item's verdict (:func:`decide` on :func:`checks`) and its record."""
    verdict = decide(checks(test, values, audit, accuracy, performance, part3))
    return verdict, compliance_record(
        test, values, runs, accuracy, performance, part3, verdict=verdict
    )


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
    outcomes: list[RunOutcome] = []

    def run(mode: str, sub: str, audit: Mapping[str, int] | None = None) -> RunOutcome:
        outdir = request.outdir / sub
        outdir.mkdir()
        sub_request = replace(request, mode=mode, outdir=outdir, compliance=test, audit=audit)
        outcomes.append(backend.run(sub_request, progress))
        return outcomes[-1]

    runs = {"performance": "reused", "accuracy": "reused", "audit": "run"}
    perf_dir = earlier.get("performance")
    if perf_dir is None:
        perf_dir = run("performance", "performance").log_dir
        runs["performance"] = "run"
    acc_dir = earlier.get("accuracy")
    if acc_dir is None or not reuses_accuracy_run(backend):
        acc_dir = run("accuracy", "accuracy").log_dir
        runs["accuracy"] = "run"
    outcome = run("performance", "audit", values)
    outcome.run_seconds = sum(o.run_seconds for o in outcomes)
    audit = parse_dir(outcome.log_dir)
    if outcome.compare is not None:
        audit.warnings.extend(outcome.compare(audit))
    accuracy = verify_accuracy(acc_dir / ACCURACY, outcome.log_dir / ACCURACY)
    part3: PartThree | str | None = None
    if accuracy.mismatched:
        part3 = _part_three(backend, request, acc_dir / ACCURACY, outcome.log_dir, progress)
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
    verdict, record = judge_compliance(test, values, runs, audit, accuracy, performance, part3)
    return outcome, audit, verdict, record


def _part_three(
    backend: Backend,
    request: RunRequest,
    accuracy_log: Path,
    audit_dir: Path,
    progress: Progress,
) -> PartThree | str:
    """Run part III where the backend names a data set; else say why it cannot run."""
    from pytest_mlperf.accuracy.figures import DatasetError
    from pytest_mlperf.results.loadgen import ACCURACY

    table = load_tests()[request.mode].get("part3_tolerance") or {}
    tolerance = table.get(f"{request.variant.target_ratio:g}")
    if tolerance is None:
        return f"no part III limit for a {request.variant.target_ratio:g} target in the data"
    acc_request = replace(request, mode="accuracy", compliance=request.mode)
    data = (
        backend.accuracy_data(acc_request, progress)
        if isinstance(backend, AccuracyProvider)
        else None
    )
    if data is None:
        return f"the {backend.name} backend names no data set to score the responses on"
    try:
        index_map = (
            backend.compliance_index_map(acc_request, progress)
            if isinstance(backend, ComplianceIndexMap)
            else None
        )
        result = part_three(
            accuracy_log,
            audit_dir / ACCURACY,
            data.dataset,
            index_map,
            audit_dir / "part3",
            float(tolerance),
        )
    except DatasetError as exc:
        return f"cannot score the sampled responses: {exc}"
    progress(
        f"{request.variant.name} {request.scenario} {request.mode} part III: {result.metric} "
        f"{result.compliance:.4f} vs {result.baseline:.4f} on {result.samples} samples "
        f"(Δ {result.delta * 100:.3f} %, limit {result.tolerance * 100:g} %)"
    )
    return result
