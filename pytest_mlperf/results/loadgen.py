"""One parser for every backend: LoadGen's detail log first, its summary as fallback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.errors import ParseError

DETAIL = "mlperf_log_detail.txt"
SUMMARY = "mlperf_log_summary.txt"
ACCURACY = "mlperf_log_accuracy.json"
_PREFIX = ":::MLLOG"

#: The MLPerf metric of each scenario, by the key LoadGen logs it under.
SCENARIO_METRICS = {
    "Offline": "result_samples_per_second",
    "Server": "result_completed_samples_per_sec",
    "SingleStream": "result_90.00_percentile_latency_ns",
    "MultiStream": "result_99.00_percentile_per_query_latency_ns",
}
#: Keys older LoadGen versions used for the same metric.
_LEGACY_METRICS = {"Server": ("result_scheduled_samples_per_sec",)}
UNITS = {"Offline": "samples/s", "Server": "samples/s", "SingleStream": "ns", "MultiStream": "ns"}
_MODES = {
    "PerformanceOnly": "performance",
    "AccuracyOnly": "accuracy",
    "SubmissionRun": "submission",
}

#: Reasons a shortened (--mlperf-fast) run is expected to have; nothing else is excused.
SHORTENED_RUN_REASONS = frozenset({"min_duration_not_met", "min_queries_not_met"})
_FLAG_REASONS = (
    ("result_min_duration_met", "min_duration_not_met", "minimum duration not met"),
    ("result_min_queries_met", "min_queries_not_met", "minimum query count not met"),
    ("early_stopping_met", "early_stopping_not_met", "early stopping criteria not met"),
    ("result_perf_constraints_met", "perf_constraints_not_met", "latency constraint not met"),
)


@dataclass(frozen=True)
class Reason:
    """Why LoadGen called a run INVALID; ``code`` is stable, ``message`` is for people."""

    code: str
    message: str

    @property
    def shortened_run(self) -> bool:
        """True when only a shortened run explains this reason."""
        return self.code in SHORTENED_RUN_REASONS


@dataclass
class ParsedLog:
    """What one LoadGen run logged, reduced to what verdicts and reports need."""

    source: str
    scenario: str | None = None
    mode: str | None = None
    result_validity: str | None = None
    metric_name: str | None = None
    metric_value: float | None = None
    unit: str | None = None
    early_stopping_met: bool | None = None
    min_duration_met: bool | None = None
    min_queries_met: bool | None = None
    perf_constraints_met: bool | None = None
    invalid_reasons: list[Reason] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    loadgen: dict[str, Any] = field(default_factory=dict)
    loadgen_version: str | None = None

    def record_fields(self) -> dict[str, Any]:
        """The fields a result record takes from the logs, JSON-ready."""
        return {
            "result_validity": self.result_validity,
            "metric": {"name": self.metric_name, "value": self.metric_value, "unit": self.unit},
            "early_stopping_met": self.early_stopping_met,
            "min_duration_met": self.min_duration_met,
            "min_queries_met": self.min_queries_met,
            "perf_constraints_met": self.perf_constraints_met,
            "invalid_reasons": [asdict(r) for r in self.invalid_reasons],
            "advice": list(self.advice),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "loadgen": dict(self.loadgen),
            "loadgen_version": self.loadgen_version,
        }


def iter_mllog(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Yield ``(line_no, record)`` for each ``:::MLLOG`` line; record is None when unreadable.

    Streams the file and tolerates bytes that are not UTF-8.
    """
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            line = raw.decode("utf-8", errors="replace").strip()
            if not line.startswith(_PREFIX):
                continue
            try:
                record = json.loads(line[len(_PREFIX) :])
            except json.JSONDecodeError:
                yield line_no, None
                continue
            yield line_no, record if isinstance(record, dict) and "key" in record else None


def _normalise_scenario(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    compact = value.replace(" ", "")
    return compact if compact in SCENARIO_METRICS else None


def parse_detail(path: Path) -> ParsedLog:
    """Parse ``mlperf_log_detail.txt``; every ``result_*``/``effective_*`` key is kept as logged."""
    parsed = ParsedLog(source=str(path))
    seen = 0
    for line_no, record in iter_mllog(path):
        if record is None:
            parsed.warnings.append(f"{path.name}:{line_no}: unreadable MLLOG line skipped")
            continue
        seen += 1
        key, value = str(record["key"]), record.get("value")
        meta = record.get("metadata") or {}
        if isinstance(meta, dict) and meta.get("is_error"):
            parsed.errors.append(f"{key}: {value}")
        elif isinstance(meta, dict) and meta.get("is_warning"):
            parsed.warnings.append(f"{key}: {value}")
        if key.startswith("error"):
            msg = f"{key}: {value}"
            if msg not in parsed.errors:
                parsed.errors.append(msg)
        if key == "result_invalid_reason":
            if isinstance(value, str) and value.strip() and value.strip() not in parsed.advice:
                parsed.advice.append(value.strip())
            continue
        if key.startswith(("result_", "effective_", "early_stopping_latency_")) or (
            key == "early_stopping_met"
        ):
            parsed.loadgen[key] = value
        if key == "loadgen_version":
            parsed.loadgen_version = str(value)
        elif key == "result_validity" and parsed.result_validity != "INVALID":
            # several checks may each log a validity: one INVALID makes the run INVALID
            parsed.result_validity = str(value)
    if seen == 0:
        raise ParseError(f"{path}: no MLLOG records (empty or not a LoadGen detail log)")
    lg = parsed.loadgen
    parsed.scenario = _normalise_scenario(lg.get("effective_scenario"))
    parsed.mode = _MODES.get(str(lg.get("effective_test_mode")))
    parsed.early_stopping_met = _bool(lg.get("early_stopping_met"))
    parsed.min_duration_met = _bool(lg.get("result_min_duration_met"))
    parsed.min_queries_met = _bool(lg.get("result_min_queries_met"))
    parsed.perf_constraints_met = _bool(lg.get("result_perf_constraints_met"))
    _set_metric(parsed)
    _derive_reasons(parsed)
    if (
        parsed.mode == "performance"
        and parsed.result_validity is not None
        and parsed.metric_value is None
    ):
        # cut short after the validity line: a "VALID" without its figure proves nothing
        parsed.invalid_reasons.append(
            Reason("incomplete_log", f"{path.name}: no {parsed.metric_name} logged")
        )
        parsed.result_validity = None
    return parsed


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _set_metric(parsed: ParsedLog) -> None:
    if parsed.scenario is None:
        return
    parsed.unit = UNITS[parsed.scenario]
    for key in (SCENARIO_METRICS[parsed.scenario], *_LEGACY_METRICS.get(parsed.scenario, ())):
        value = parsed.loadgen.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parsed.metric_name, parsed.metric_value = key, float(value)
            return
    parsed.metric_name = SCENARIO_METRICS[parsed.scenario]


def _derive_reasons(parsed: ParsedLog) -> None:
    """Reasons come from the check flags and errors, since LoadGen's own text may be empty."""
    if parsed.result_validity != "INVALID":
        return
    for key, code, message in _FLAG_REASONS:
        if parsed.loadgen.get(key) is False:
            parsed.invalid_reasons.append(Reason(code, message))
    for error in parsed.errors:
        parsed.invalid_reasons.append(Reason("loadgen_error", error))
    if not parsed.invalid_reasons:
        text = "; ".join(parsed.advice) or "LoadGen logged INVALID without a reason"
        parsed.invalid_reasons.append(Reason("unexplained", text))


_SUMMARY_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")
_SUMMARY_METRICS = {
    "Offline": ("Samples per second",),
    "Server": ("Completed samples per second", "Scheduled samples per second"),
    "SingleStream": ("90.0th percentile latency (ns)", "90th percentile latency (ns)"),
    "MultiStream": ("99.0th percentile latency (ns)", "99th percentile latency (ns)"),
}
_SUMMARY_FLAGS = {
    "Min duration satisfied": "result_min_duration_met",
    "Min queries satisfied": "result_min_queries_met",
    "Early stopping satisfied": "early_stopping_met",
    "Performance constraints satisfied": "result_perf_constraints_met",
}


def parse_summary(path: Path) -> ParsedLog:
    """Fallback: parse the human summary when the detail log is missing or incomplete."""
    parsed = ParsedLog(source=str(path))
    fields: dict[str, str] = {}
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        match = _SUMMARY_LINE.match(line)
        if match and match.group(1) not in fields:
            fields[match.group(1)] = match.group(2)
    if "Scenario" not in fields:
        raise ParseError(f"{path}: not a LoadGen summary (no 'Scenario' line)")
    parsed.scenario = _normalise_scenario(fields["Scenario"])
    parsed.mode = _MODES.get(fields.get("Mode", ""))
    if "Result is" in fields:
        parsed.result_validity = fields["Result is"]
    for label, key in _SUMMARY_FLAGS.items():
        if label in fields:
            parsed.loadgen[key] = fields[label] == "Yes"
    parsed.early_stopping_met = _bool(parsed.loadgen.get("early_stopping_met"))
    parsed.min_duration_met = _bool(parsed.loadgen.get("result_min_duration_met"))
    parsed.min_queries_met = _bool(parsed.loadgen.get("result_min_queries_met"))
    parsed.perf_constraints_met = _bool(parsed.loadgen.get("result_perf_constraints_met"))
    if parsed.scenario is not None:
        parsed.unit = UNITS[parsed.scenario]
        parsed.metric_name = SCENARIO_METRICS[parsed.scenario]
        for label in _SUMMARY_METRICS[parsed.scenario]:
            if label in fields:
                try:
                    parsed.metric_value = float(fields[label])
                except ValueError:
                    continue
                parsed.loadgen[parsed.metric_name] = parsed.metric_value
                break
    _derive_reasons(parsed)
    return parsed


#: Left by a run that was interrupted: its logs hold answers given without computing them.
INTERRUPTED_NOTE = "INTERRUPTED.txt"


def parse_dir(directory: Path) -> ParsedLog:
    """Parse the LoadGen logs in ``directory``: detail log as truth, summary as fallback.

    An interrupted run's logs (:data:`INTERRUPTED_NOTE`) are refused: never a figure."""
    if (directory / INTERRUPTED_NOTE).is_file():
        raise ParseError(
            f"{directory}: this LoadGen run was interrupted; its logs are not a result "
            f"(see {INTERRUPTED_NOTE})"
        )
    detail, summary = directory / DETAIL, directory / SUMMARY
    problems: list[str] = []
    if detail.is_file():
        try:
            parsed = parse_detail(detail)
        except ParseError as exc:
            problems.append(str(exc))
        else:
            if parsed.result_validity is not None or parsed.mode == "accuracy":
                return parsed
            problems.append(f"{detail}: no result_validity (log incomplete)")
            if not summary.is_file():
                if not any(r.code == "incomplete_log" for r in parsed.invalid_reasons):
                    parsed.invalid_reasons.append(Reason("incomplete_log", problems[-1]))
                return parsed
    if summary.is_file():
        parsed = parse_summary(summary)
        parsed.warnings.extend(problems)
        return parsed
    if problems:
        raise ParseError("; ".join(problems))
    raise ParseError(f"no LoadGen logs in {directory}: expected {DETAIL} or {SUMMARY}")
