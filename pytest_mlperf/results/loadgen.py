"""One parser for every backend: LoadGen's detail log, checked against its summary.

The rule: a log is complete and consistent (every figure finite and plausible, summary and
detail agreeing, every check flag LoadGen writes present, one value per key) or it is
unreadable and :func:`parse_dir` raises :class:`ParseError` saying where. The summary alone
is read only when there is no detail log at all.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.errors import ParseError
from pytest_mlperf.results import summary as sm
from pytest_mlperf.results.logfile import check_regular_file, iter_lines, strict_json

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


#: Keys read into :attr:`ParsedLog.loadgen` (kept verbatim, as logged).
_KEPT = ("result_", "effective_", "early_stopping_latency_")
_PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")
_LATENCIES = (
    "result_min_latency_ns",
    "result_max_latency_ns",
    "result_mean_latency_ns",
    *(f"result_{p}_percentile_latency_ns" for p in _PERCENTILES),
)
_QUERY_LATENCIES = (
    "result_min_query_latency_ns",
    "result_max_query_latency_ns",
    "result_mean_query_latency_ns",
    *(f"result_{p}_percentile_per_query_latency_ns" for p in _PERCENTILES),
)
#: What LoadGen's detail log of a performance run holds, per scenario, besides the flags.
_REQUIRED = {
    "Offline": ("result_query_count", *_LATENCIES),
    "Server": (
        "result_query_count",
        "result_overlatency_query_count",
        "result_scheduled_samples_per_sec",
        *_LATENCIES,
    ),
    "SingleStream": (
        "result_query_count",
        "result_qps_with_loadgen_overhead",
        "result_qps_without_loadgen_overhead",
        *_LATENCIES,
    ),
    "MultiStream": ("result_query_count", *_QUERY_LATENCIES, *_LATENCIES),
}
_COUNTS = ("result_query_count", "result_overlatency_query_count")


def flag_keys(scenario: str) -> tuple[str, ...]:
    """The check flags LoadGen logs for ``scenario`` (perf constraints: Server only)."""
    common = ("result_min_duration_met", "result_min_queries_met", "early_stopping_met")
    return ("result_perf_constraints_met", *common) if scenario == "Server" else common


def flags_problem(scenario: str, validity: str, flags: Mapping[str, bool]) -> str | None:
    """Why these check flags cannot be LoadGen's, or None: the validity is VALID exactly
    when every flag is true, and early stopping never fails an Offline run."""
    if (validity == "VALID") != all(flags.values()):
        failed = [k for k, v in flags.items() if not v] or ["none"]
        return (
            f"result_validity {validity} contradicts the check flags (failed: {', '.join(failed)})"
        )
    if scenario == "Offline" and flags.get("early_stopping_met") is False:
        return "early_stopping_met is false, but LoadGen's early stopping never fails Offline"
    return None


@dataclass
class _Entry:
    value: Any
    line_no: int
    record: dict[str, Any]


@dataclass
class _Detail:
    """The records of one detail log: one entry per key read, errors, warnings."""

    path: Path
    entries: dict[str, _Entry] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    def problem(self, text: str) -> ParseError:
        return ParseError(f"{self.path}: {text}")

    def value(self, key: str) -> Any:
        entry = self.entries.get(key)
        return None if entry is None else entry.value


def _is_kept(key: str) -> bool:
    return key.startswith(_KEPT) or key in ("early_stopping_met", "loadgen_version", "num_errors")


def _read_detail(path: Path) -> _Detail:
    detail = _Detail(path)
    seen = 0
    for line_no, raw in iter_lines(path):
        if not raw.strip():
            continue
        if not raw.startswith(_PREFIX.encode()):
            raise detail.problem(f"line {line_no}: not an MLLOG record: {raw[:60]!r}")
        try:
            record = strict_json(raw[len(_PREFIX) :].decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise detail.problem(f"line {line_no}: unreadable MLLOG record ({exc})") from None
        if not isinstance(record, dict) or not isinstance(record.get("key"), str):
            raise detail.problem(f"line {line_no}: MLLOG record without a key")
        meta = record.get("metadata", {})
        if not isinstance(meta, dict) or not all(
            isinstance(meta.get(k, False), bool) for k in ("is_error", "is_warning")
        ):
            raise detail.problem(f"line {line_no}: MLLOG record with malformed metadata")
        seen += 1
        key, value = record["key"], record.get("value")
        if meta.get("is_error"):
            detail.errors.append(f"{key}: {value}")
        elif key.startswith("error"):
            raise detail.problem(f"line {line_no}: {key} is not marked as an error (is_error)")
        elif meta.get("is_warning"):
            detail.warnings.append(f"{key}: {value}")
        if key == "result_invalid_reason" and isinstance(value, str) and value.strip():
            detail.advice.append(value.strip())
        if not _is_kept(key):
            continue
        earlier = detail.entries.get(key)
        if earlier is None:
            detail.entries[key] = _Entry(value, line_no, record)
        elif earlier.record != record:
            raise detail.problem(
                f"{key} logged twice with different records (line {earlier.line_no}: "
                f"{_shown(earlier.value)}, line {line_no}: {_shown(value)}): "
                "which one is LoadGen's cannot be told"
            )
    if seen == 0:
        raise detail.problem("no MLLOG records (empty or not a LoadGen detail log)")
    return detail


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(detail: _Detail, key: str, *, integer: bool = False, positive: bool = True) -> float:
    value = detail.value(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise detail.problem(f"{key} is {_shown(value)}, not a number")
    if integer and not isinstance(value, int):
        raise detail.problem(f"{key} is {_shown(value)}, not an integer")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        raise detail.problem(f"{key} is {_shown(value)}; a run LoadGen completed logs {bound}")
    return number


def _check_latencies(detail: _Detail, keys: tuple[str, ...]) -> None:
    """Min <= each percentile (in order) <= max. The mean is only checked to be a count:
    LoadGen's own sum overflows on long Offline runs (published logs have mean < min)."""
    low, high, _mean, *percentiles = (_number(detail, k, integer=True) for k in keys)
    previous = low
    for key, value in zip(keys[3:], percentiles, strict=True):
        if not previous <= value <= high:
            raise detail.problem(
                f"{key} {value:.0f} is out of order (previous {previous:.0f}, max {high:.0f})"
            )
        previous = value


def parse_detail(path: Path) -> ParsedLog:
    """Parse ``mlperf_log_detail.txt``; every ``result_*``/``effective_*`` key is kept as
    logged. Raises :class:`ParseError` when the log is incomplete or inconsistent."""
    detail = _read_detail(path)
    parsed = ParsedLog(source=str(path))
    parsed.errors, parsed.warnings, parsed.advice = detail.errors, detail.warnings, detail.advice
    parsed.loadgen = {
        k: e.value
        for k, e in detail.entries.items()
        if k.startswith(_KEPT) or k == "early_stopping_met"
    }
    version = detail.value("loadgen_version")
    parsed.loadgen_version = None if version is None else str(version)
    scenario = detail.value("effective_scenario")
    parsed.scenario = _normalise_scenario(scenario)
    if parsed.scenario is None:
        raise detail.problem(
            f"effective_scenario is {_shown(scenario)}; valid: {', '.join(SCENARIO_METRICS)}"
        )
    test_mode = detail.value("effective_test_mode")
    parsed.mode = _MODES.get(test_mode) if isinstance(test_mode, str) else None
    if parsed.mode is None:
        raise detail.problem(
            f"effective_test_mode is {_shown(test_mode)}; valid: {', '.join(_MODES)}"
        )
    num_errors = detail.value("num_errors")
    if "num_errors" in detail.entries and (
        isinstance(num_errors, bool) or num_errors != len(detail.errors)
    ):
        raise detail.problem(
            f"num_errors is {_shown(num_errors)} but {len(detail.errors)} error records are logged"
        )
    parsed.unit = UNITS[parsed.scenario]
    parsed.metric_name = SCENARIO_METRICS[parsed.scenario]
    if parsed.mode == "accuracy" or (
        parsed.mode == "submission" and "result_validity" not in detail.entries
    ):
        return parsed
    _check_performance(detail, parsed)
    return parsed


def _check_performance(detail: _Detail, parsed: ParsedLog) -> None:
    assert parsed.scenario is not None
    validity = detail.value("result_validity")
    if "result_validity" not in detail.entries:
        raise detail.problem("no result_validity: the log is cut short")
    if validity not in ("VALID", "INVALID"):
        raise detail.problem(
            f"result_validity is {_shown(validity)}; LoadGen logs VALID or INVALID"
        )
    flags: dict[str, bool] = {}
    for key in flag_keys(parsed.scenario):
        value = detail.value(key)
        if not isinstance(value, bool):
            missing = key not in detail.entries
            raise detail.problem(
                f"{key} is {'missing' if missing else _shown(value)}; LoadGen logs true or false"
            )
        flags[key] = value
    problem = flags_problem(parsed.scenario, validity, flags)
    if problem is not None:
        raise detail.problem(problem)
    for key in _REQUIRED[parsed.scenario]:
        if key not in detail.entries:
            raise detail.problem(f"no {key}: the log is cut short or a line is missing")
    for key in _COUNTS:
        if key in detail.entries:
            _number(detail, key, integer=True, positive=key == "result_query_count")
    _check_latencies(detail, _LATENCIES)
    if parsed.scenario == "MultiStream":
        _check_latencies(detail, _QUERY_LATENCIES)
    for key in ("result_qps_with_loadgen_overhead", "result_qps_without_loadgen_overhead"):
        if key in detail.entries:
            _number(detail, key)
    name = SCENARIO_METRICS[parsed.scenario]
    if name not in detail.entries:
        raise detail.problem(f"no {name}: the metric is not logged")
    if parsed.scenario == "Server":
        _number(detail, "result_scheduled_samples_per_sec")
    parsed.metric_name, parsed.metric_value = name, _number(detail, name)
    parsed.result_validity = validity
    parsed.early_stopping_met = flags["early_stopping_met"]
    parsed.min_duration_met = flags["result_min_duration_met"]
    parsed.min_queries_met = flags["result_min_queries_met"]
    parsed.perf_constraints_met = flags.get("result_perf_constraints_met")
    _derive_reasons(parsed)


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


def _normalise_scenario(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    compact = value.replace(" ", "")
    return compact if compact in SCENARIO_METRICS else None


#: The stream scenarios print their metric twice: as the target percentile and in the stats.
_METRIC_STAT = {
    "SingleStream": "90.00 percentile latency (ns)",
    "MultiStream": "99.00 percentile latency (ns)",
}


def _check_recommendations(summary: sm.Summary, validity: str, flags: Mapping[str, Any]) -> None:
    """LoadGen writes "Recommendations:" for an INVALID run, one line per failed check of
    duration, queries or constraints (early stopping has its own section)."""
    checks = ("result_perf_constraints_met", "result_min_duration_met", "result_min_queries_met")
    failed = sum(1 for key in checks if flags.get(key) is False)
    expected = failed if validity == "INVALID" else None
    if summary.recommendations != expected:
        raise summary.problem(
            f"{summary.recommendations} recommendation lines for {failed} failed checks "
            f"of a {validity} run (LoadGen writes one per failed check)"
        )


def parse_summary(path: Path) -> ParsedLog:
    """Parse the human summary alone (a directory without a detail log)."""
    summary = sm.read_summary(path)
    parsed = ParsedLog(source=str(path))
    if summary.error_count:
        parsed.errors.append(f"{summary.error_count} LoadGen error(s) logged (see the detail log)")
    fields = summary.fields
    if "Scenario" not in fields:
        raise summary.problem("no 'Scenario' line (not a LoadGen performance summary)")
    parsed.scenario = _normalise_scenario(fields["Scenario"])
    if parsed.scenario is None:
        raise summary.problem(
            f"Scenario is {fields['Scenario']!r}; valid: {', '.join(SCENARIO_METRICS)}"
        )
    parsed.mode = _MODES.get(fields.get("Mode", ""))
    if parsed.mode is None:
        raise summary.problem(f"Mode is {fields.get('Mode')!r}; valid: {', '.join(_MODES)}")
    parsed.unit = UNITS[parsed.scenario]
    parsed.metric_name = SCENARIO_METRICS[parsed.scenario]
    if parsed.mode == "accuracy":
        return parsed
    validity = fields.get("Result is")
    if validity not in ("VALID", "INVALID"):
        raise summary.problem(f"'Result is' is {validity!r}; LoadGen writes VALID or INVALID")
    for key in flag_keys(parsed.scenario):
        label = next(lb for lb, k in sm.FLAG_LABELS.items() if k == key)
        if label not in fields:
            raise summary.problem(f"no {label!r} line: the summary is incomplete")
        parsed.loadgen[key] = sm.flag(summary, label)
    flags = {k: bool(parsed.loadgen[k]) for k in flag_keys(parsed.scenario)}
    problem = flags_problem(parsed.scenario, validity, flags)
    if problem is not None:
        raise summary.problem(problem)
    _check_recommendations(summary, validity, parsed.loadgen)
    metric = next((lb for lb in sm.METRIC_LABELS[parsed.scenario] if lb in fields), None)
    if metric is None:
        raise summary.problem(f"no {sm.METRIC_LABELS[parsed.scenario][0]!r} line: no metric")
    value = sm.number(summary, metric, fields[metric])
    if value <= 0:
        raise summary.problem(f"{metric!r} is {fields[metric]!r}; a completed run logs > 0")
    for stat in sm.required_stats(parsed.scenario):
        if stat not in summary.stats:
            raise summary.problem(f"no {stat!r} line: the summary is incomplete")
        sm.number(summary, stat, summary.stats[stat])
    again = _METRIC_STAT.get(parsed.scenario)
    if again is not None and summary.stats.get(again) != fields[metric]:
        raise summary.problem(
            f"{metric!r} {fields[metric]!r} vs {again!r} {summary.stats.get(again)!r}"
        )
    parsed.metric_value = value
    parsed.loadgen[parsed.metric_name] = value
    parsed.result_validity = validity
    parsed.early_stopping_met = parsed.loadgen["early_stopping_met"]
    parsed.min_duration_met = parsed.loadgen["result_min_duration_met"]
    parsed.min_queries_met = parsed.loadgen["result_min_queries_met"]
    parsed.perf_constraints_met = parsed.loadgen.get("result_perf_constraints_met")
    _derive_reasons(parsed)
    return parsed


#: Keys whose value is a double: LoadGen's detail log prints 6 significant digits.
def _is_double(key: str) -> bool:
    return any(part in key for part in ("per_sec", "qps"))


def _agrees(text: str, value: Any, double: bool) -> bool:
    """Whether the summary's ``text`` and the detail's ``value`` are the same figure."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        shown = float(text)
    except ValueError:
        return False
    if not math.isfinite(shown):
        return False
    if not double:
        return text.lstrip("-").isdigit() and len(text) <= 21 and int(text) == value
    decimals = len(text.partition(".")[2]) if "e" not in text.lower() else 0
    tolerance = 0.5 * 10.0**-decimals + 5e-6 * abs(float(value))
    return abs(shown - float(value)) <= tolerance * (1 + 1e-9)


def cross_check(parsed: ParsedLog, summary_path: Path) -> None:
    """Raise :class:`ParseError` unless the summary says what the detail log says."""
    summary = sm.read_summary(summary_path)
    where = f"{summary_path.name} and {DETAIL} disagree"
    if summary.error_count != len(parsed.errors):
        raise summary.problem(
            f"{where}: {summary.error_count} errors in the summary, "
            f"{len(parsed.errors)} error records in the detail log"
        )
    fields = summary.fields
    if parsed.mode == "accuracy" and "Scenario" not in fields:
        return
    assert parsed.scenario is not None
    mode = _MODES.get(fields.get("Mode", ""))
    if _normalise_scenario(fields.get("Scenario")) != parsed.scenario or mode != parsed.mode:
        raise summary.problem(
            f"{where}: scenario/mode {fields.get('Scenario')!r}/{fields.get('Mode')!r} "
            f"vs {parsed.scenario}/{parsed.mode}"
        )
    if parsed.result_validity is None:
        return
    if fields.get("Result is") != parsed.result_validity:
        raise summary.problem(
            f"{where}: 'Result is' {fields.get('Result is')!r} vs {parsed.result_validity}"
        )
    for label, key in sm.FLAG_LABELS.items():
        logged = parsed.loadgen.get(key)
        if (label in fields or logged is not None) and (
            label not in fields or fields[label] != ("Yes" if logged else "NO")
        ):
            raise summary.problem(f"{where}: {label!r} {fields.get(label)!r} vs {key} {logged!r}")
    metric = next((lb for lb in sm.METRIC_LABELS[parsed.scenario] if lb in fields), None)
    if metric is None or not _agrees(
        fields[metric], parsed.metric_value, _is_double(str(parsed.metric_name))
    ):
        raise summary.problem(
            f"{where}: metric {fields.get(metric or '')!r} vs {parsed.metric_name} {parsed.metric_value}"
        )
    _agree_all(summary, parsed.loadgen, where, parsed.scenario)


def _agree_all(summary: sm.Summary, loadgen: Mapping[str, Any], where: str, scenario: str) -> None:
    pairs = [(label, sm.stat_key(label, scenario), text) for label, text in summary.stats.items()]
    pairs += [(label, sm.PARAMETERS[label], text) for label, text in summary.parameters.items()]
    for label, key, text in pairs:
        if key is None or key not in loadgen:
            continue
        if not _agrees(text, loadgen[key], _is_double(key)):
            raise summary.problem(f"{where}: {label!r} {text!r} vs {key} {_shown(loadgen[key])}")


#: Left by a run that was interrupted: its logs hold answers given without computing them.
INTERRUPTED_NOTE = "INTERRUPTED.txt"


def parse_dir(directory: Path) -> ParsedLog:
    """Parse the LoadGen logs in ``directory``: the detail log, checked against the summary;
    the summary alone only when there is no detail log. Raises :class:`ParseError`.

    An interrupted run's logs (:data:`INTERRUPTED_NOTE`) are refused: never a figure."""
    if (directory / INTERRUPTED_NOTE).is_file():
        raise ParseError(
            f"{directory}: this LoadGen run was interrupted; its logs are not a result "
            f"(see {INTERRUPTED_NOTE})"
        )
    detail, summary = directory / DETAIL, directory / SUMMARY
    has_detail = os.path.lexists(detail)
    has_summary = os.path.lexists(summary)
    if has_detail:
        parsed = parse_detail(detail)
        if has_summary:
            cross_check(parsed, summary)
        elif parsed.mode != "accuracy":
            parsed.warnings.append(f"{directory}: no {SUMMARY} to check the detail log against")
        return parsed
    if has_summary:
        check_regular_file(summary)
        return parse_summary(summary)
    raise ParseError(f"no LoadGen logs in {directory}: expected {DETAIL} or {SUMMARY}")
