"""LoadGen's human summary (``mlperf_log_summary.txt``), read strictly.

A summary is complete when it ends with LoadGen's error-count line and holds every line
LoadGen writes for its scenario and mode; a known label logged twice with two values, a
flag other than ``Yes``/``NO`` or a figure that is not a finite number makes it unreadable.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from pytest_mlperf.errors import ParseError
from pytest_mlperf.results.logfile import iter_lines

#: A summary is a few kB; anything far longer is not one.
MAX_SUMMARY_LINE = 64 << 10
_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")
_NO_ERRORS = "No errors encountered during test."
_ERRORS = re.compile(r"^(\d{1,9}) ERRORS? encountered\. See detailed log\.$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$")

#: The metric line of each scenario (several LoadGen versions' spellings).
METRIC_LABELS = {
    "Offline": ("Samples per second",),
    "Server": ("Completed samples per second",),
    "SingleStream": ("90.0th percentile latency (ns)", "90th percentile latency (ns)"),
    "MultiStream": ("99.0th percentile latency (ns)", "99th percentile latency (ns)"),
}
#: Check lines, by the detail-log key they mirror.
FLAG_LABELS = {
    "Min duration satisfied": "result_min_duration_met",
    "Min queries satisfied": "result_min_queries_met",
    "Early stopping satisfied": "early_stopping_met",
    "Performance constraints satisfied": "result_perf_constraints_met",
}
_PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")
#: Lines of "Additional Stats" by the detail key they mirror (MultiStream: per query).
_STATS = {
    "Min latency (ns)": "min",
    "Max latency (ns)": "max",
    "Mean latency (ns)": "mean",
    **{f"{p} percentile latency (ns)": p for p in _PERCENTILES},
}
_EXTRA_STATS = {
    "Scheduled samples per second": "result_scheduled_samples_per_sec",
    "QPS w/ loadgen overhead": "result_qps_with_loadgen_overhead",
    "QPS w/o loadgen overhead": "result_qps_without_loadgen_overhead",
}
#: "Test Parameters Used" lines, by the detail key they mirror.
PARAMETERS = {
    "samples_per_query": "effective_samples_per_query",
    "target_qps": "effective_target_qps",
    "target_latency (ns)": "effective_target_latency_ns",
    "max_async_queries": "effective_max_async_queries",
    "min_duration (ms)": "effective_min_duration_ms",
    "max_duration (ms)": "effective_max_duration_ms",
    "min_query_count": "effective_min_query_count",
    "max_query_count": "effective_max_query_count",
    "qsl_rng_seed": "effective_qsl_rng_seed",
    "sample_index_rng_seed": "effective_sample_index_rng_seed",
    "schedule_rng_seed": "effective_schedule_rng_seed",
    "performance_sample_count": "effective_performance_sample_count",
}
_HEADER = ("Scenario", "Mode", "Result is")


def stat_key(label: str, scenario: str) -> str | None:
    """The detail-log key an "Additional Stats" line mirrors, or None."""
    if label in _EXTRA_STATS:
        return _EXTRA_STATS[label]
    part = _STATS.get(label)
    if part is None:
        return None
    query = "query_" if scenario == "MultiStream" else ""
    if part in ("min", "max", "mean"):
        return f"result_{part}_{query}latency_ns"
    return f"result_{part}_percentile_{'per_query_' if query else ''}latency_ns"


def required_stats(scenario: str) -> list[str]:
    """The "Additional Stats" labels LoadGen writes for ``scenario``."""
    labels = list(_STATS)
    if scenario == "Server":
        labels.append("Scheduled samples per second")
    elif scenario == "SingleStream":
        labels += ["QPS w/ loadgen overhead", "QPS w/o loadgen overhead"]
    return labels


@dataclass
class Summary:
    """The known lines of a summary, as text, and its error count."""

    path: Path
    fields: dict[str, str] = field(default_factory=dict)
    stats: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    error_count: int = 0
    #: The " * " lines under "Recommendations:" (one per failed duration/queries/constraint
    #: check); None when the summary has no "Recommendations:" line (a VALID run).
    recommendations: int | None = None

    def problem(self, text: str) -> ParseError:
        """A ParseError naming this summary."""
        return ParseError(f"{self.path}: {text}")


def _known(label: str) -> bool:
    return (
        label in _HEADER
        or label in FLAG_LABELS
        or any(label in labels for labels in METRIC_LABELS.values())
    )


def read_summary(path: Path) -> Summary:
    """Read ``path``; raise :class:`ParseError` when it is cut short or contradicts itself."""
    summary = Summary(path)
    section = "main"
    last = ""
    in_recommendations = False
    for line_no, raw in iter_lines(path, MAX_SUMMARY_LINE):
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            continue
        last = line
        if line == "Recommendations:" and section == "main":
            summary.recommendations, in_recommendations = 0, True
            continue
        if in_recommendations and line.startswith("*"):
            summary.recommendations = (summary.recommendations or 0) + 1
            continue
        if in_recommendations and (line.endswith("Result:") or line.startswith("=")):
            in_recommendations = False
        if line in ("Additional Stats", "Test Parameters Used"):
            section = line
            continue
        match = _LINE.match(line)
        if match is None:
            continue
        label, value = match.group(1), match.group(2)
        if section == "main":
            target = summary.fields if _known(label) else None
        elif section == "Additional Stats":
            target = summary.stats if (label in _STATS or label in _EXTRA_STATS) else None
        else:
            target = summary.parameters if label in PARAMETERS else None
        if target is None:
            continue
        if label in target and target[label] != value:
            raise summary.problem(
                f"line {line_no}: {label!r} logged twice ({target[label]!r}, then {value!r})"
            )
        target[label] = value
    if last == _NO_ERRORS:
        summary.error_count = 0
    elif (errors := _ERRORS.match(last)) is not None:
        summary.error_count = int(errors.group(1))
    else:
        raise summary.problem(
            "cut short: it does not end with LoadGen's error count "
            f"({_NO_ERRORS!r} or 'N ERRORS encountered')"
        )
    return summary


def number(summary: Summary, label: str, text: str) -> float:
    """``text`` as a finite number, or a ParseError naming ``label``."""
    if not _NUMBER.match(text):
        raise summary.problem(f"{label!r} is {text!r}, not a number")
    value = float(text)
    if not math.isfinite(value):
        raise summary.problem(f"{label!r} is {text!r}, not a finite number")
    return value


def flag(summary: Summary, label: str) -> bool:
    """A check line's Yes/NO as a bool."""
    text = summary.fields[label]
    if text not in ("Yes", "NO"):
        raise summary.problem(f"{label!r} is {text!r}; LoadGen writes 'Yes' or 'NO'")
    return text == "Yes"
