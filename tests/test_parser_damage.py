"""The parser's rule on published LoadGen logs: each damage the fuzzing found, as a case.

A damaged log is unreadable (ParseError naming the file and what is wrong), never a
result the parser had to guess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_mlperf.errors import ParseError
from pytest_mlperf.results.loadgen import DETAIL, SUMMARY, parse_dir
from tests.shared_data import PUBLISHED_LOGS, require_shared

SERVER = PUBLISHED_LOGS["nvidia-h200-retinanet-server"]
OFFLINE = PUBLISHED_LOGS["nvidia-h200-3dunet-offline"]


@pytest.mark.parametrize("name", sorted(PUBLISHED_LOGS))
def test_published_logs_parse(name: str) -> None:
    parsed = parse_dir(require_shared(PUBLISHED_LOGS[name]))
    assert parsed.result_validity == "VALID" and parsed.mode == "performance"
    assert parsed.metric_value is not None and parsed.metric_value > 0
    assert parsed.invalid_reasons == [] and parsed.warnings == []
    detail = (PUBLISHED_LOGS[name] / DETAIL).read_text()
    logged = {
        r["key"]: r["value"]
        for r in (json.loads(line[len(":::MLLOG") :]) for line in detail.splitlines())
        if r["key"].startswith(("result_", "effective_"))
    }
    assert {k: v for k, v in parsed.loadgen.items() if k in logged} == logged


def _only_logs(_dir: str, names: list[str]) -> list[str]:
    """copytree's ignore: all but the two logs the parser reads (as the copies held)."""
    return [n for n in names if n not in (DETAIL, SUMMARY)]


def _copy(tmp_path: Path, source: Path = SERVER) -> Path:
    case = tmp_path / "case"
    shutil.copytree(require_shared(source), case, ignore=_only_logs)
    return case


def _edit(case: Path, name: str, change: Callable[[str], str]) -> None:
    path = case / name
    before = path.read_text()
    after = change(before)
    assert after != before  # the damage was applied
    path.write_text(after)


def _set_value(key: str, value: str) -> Callable[[str], str]:
    pattern = re.compile(rf'("key": "{re.escape(key)}", "value": )[^,]+')
    return lambda text: pattern.sub(lambda m: m.group(1) + value, text, count=1)


def _drop(key: str) -> Callable[[str], str]:
    return lambda text: "".join(
        line for line in text.splitlines(True) if f'"key": "{key}"' not in line
    )


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "-1", "0"])
def test_non_finite_or_implausible_metric_in_detail(tmp_path: Path, value: str) -> None:
    case = _copy(tmp_path)
    _edit(case, DETAIL, _set_value("result_completed_samples_per_sec", value))
    with pytest.raises(ParseError, match=r"mlperf_log_detail.txt: .*"):
        parse_dir(case)


@pytest.mark.parametrize("value", ["inf", "nan", "1e999", "-5", "0"])
def test_non_finite_metric_in_summary_alone(tmp_path: Path, value: str) -> None:
    case = _copy(tmp_path, OFFLINE)
    (case / DETAIL).unlink()
    _edit(
        case,
        SUMMARY,
        lambda t: re.sub(r"Samples per second: \S+", f"Samples per second: {value}", t),
    )
    with pytest.raises(ParseError, match=r"mlperf_log_summary.txt: 'Samples per second' is"):
        parse_dir(case)


def test_summary_cut_short_is_unreadable(tmp_path: Path) -> None:
    """Only the first bytes of a summary, no detail log: not a min-duration INVALID."""
    case = _copy(tmp_path)
    (case / DETAIL).unlink()
    data = (case / SUMMARY).read_bytes()
    (case / SUMMARY).write_bytes(data[:400])
    with pytest.raises(ParseError, match="cut short"):
        parse_dir(case)


def test_second_validity_line_in_summary_is_a_conflict(tmp_path: Path) -> None:
    case = _copy(tmp_path)
    _edit(case, SUMMARY, lambda t: t.replace("Result is : VALID", "Result is : INVALID", 1))
    _edit(case, SUMMARY, lambda t: t.replace("Mode     :", "Result is : VALID\nMode     :", 1))
    (case / DETAIL).unlink()
    with pytest.raises(ParseError, match=r"'Result is' logged twice \('VALID', then 'INVALID'\)"):
        parse_dir(case)


def test_duplicated_metric_with_another_value_is_named(tmp_path: Path) -> None:
    case = _copy(tmp_path)
    line = next(
        x
        for x in (case / DETAIL).read_text().splitlines()
        if '"result_completed_samples_per_sec"' in x
    )
    _edit(case, DETAIL, lambda t: t + line.replace("13604,", "99999,") + "\n")
    with pytest.raises(ParseError, match="result_completed_samples_per_sec logged twice"):
        parse_dir(case)


def test_byte_identical_duplicate_line_is_tolerated(tmp_path: Path) -> None:
    case = _copy(tmp_path)
    lines = (case / DETAIL).read_text().splitlines(True)
    line = next(x for x in lines if '"result_validity"' in x)
    (case / DETAIL).write_text("".join([*lines, line]))
    assert parse_dir(case).result_validity == "VALID"


def test_flipped_byte_in_a_flag_line_is_unreadable(tmp_path: Path) -> None:
    case = _copy(tmp_path)
    _edit(
        case,
        DETAIL,
        lambda t: t.replace(
            '"early_stopping_met", "value": true', '"early_stopping_met", "value": trXe'
        ),
    )
    with pytest.raises(ParseError, match=r"line \d+: unreadable MLLOG record"):
        parse_dir(case)


def test_flag_contradicting_validity_is_unreadable(tmp_path: Path) -> None:
    case = _copy(tmp_path)
    _edit(case, DETAIL, _set_value("early_stopping_met", "false"))
    with pytest.raises(ParseError, match="result_validity VALID contradicts the check flags"):
        parse_dir(case)


def test_detail_cut_after_the_metric_line(tmp_path: Path) -> None:
    case = _copy(tmp_path)
    _edit(
        case,
        DETAIL,
        lambda t: t[: t.index("\n", t.index('"result_completed_samples_per_sec"')) + 1],
    )
    (case / SUMMARY).unlink()
    with pytest.raises(ParseError, match="no result_min_latency_ns: the log is cut short"):
        parse_dir(case)


def test_metric_and_test_mode_removed(tmp_path: Path) -> None:
    case = _copy(tmp_path)
    _edit(case, DETAIL, _drop("result_completed_samples_per_sec"))
    _edit(case, DETAIL, _drop("effective_test_mode"))
    with pytest.raises(ParseError, match="effective_test_mode is None; valid: PerformanceOnly"):
        parse_dir(case)
    mode_line = next(
        x for x in (SERVER / DETAIL).read_text().splitlines(True) if '"effective_test_mode"' in x
    )
    _edit(case, DETAIL, lambda t: t + mode_line)  # the mode back: the metric is still missing
    with pytest.raises(ParseError, match="no result_completed_samples_per_sec"):
        parse_dir(case)


@pytest.mark.parametrize("name", [DETAIL, SUMMARY])
def test_misspelt_validity_is_unreadable(tmp_path: Path, name: str) -> None:
    case = _copy(tmp_path)
    _edit(case, name, lambda t: t.replace("VALID", "INVALIE", 1))
    with pytest.raises(ParseError, match="INVALIE"):
        parse_dir(case)


@pytest.mark.parametrize("depth", [1100, 100_000])
def test_deep_json_in_a_log_line(tmp_path: Path, depth: int) -> None:
    case = _copy(tmp_path)
    deep = "[" * depth + "]" * depth
    _edit(case, DETAIL, lambda t: t + f':::MLLOG {{"key": "x", "value": {deep}}}\n')
    with pytest.raises(ParseError, match="nested too deep"):
        parse_dir(case)


def test_400_digit_integer(tmp_path: Path) -> None:
    case = _copy(tmp_path)
    _edit(case, DETAIL, _set_value("result_max_latency_ns", "9" * 400))
    with pytest.raises(ParseError, match="integer of 400 digits"):
        parse_dir(case)


def test_summary_disagreeing_with_detail(tmp_path: Path) -> None:
    case = _copy(tmp_path)
    _edit(
        case,
        SUMMARY,
        lambda t: t.replace(
            "Max latency (ns)                : 81724374",
            "Max latency (ns)                : 81724375",
        ),
    )
    with pytest.raises(
        ParseError, match="disagree: 'Max latency \\(ns\\)' '81724375' vs result_max_latency_ns"
    ):
        parse_dir(case)


def test_error_record_counts_must_agree(tmp_path: Path) -> None:
    """An error is a record LoadGen marks is_error; the summary counts the same errors."""
    case = _copy(tmp_path)
    error = (
        ':::MLLOG {"key": "error_runtime", "value": "boom", "metadata": '
        '{"is_error": true, "is_warning": false}}\n'
    )
    _edit(case, DETAIL, lambda t: t + error)
    with pytest.raises(ParseError, match="0 errors in the summary, 1 error records"):
        parse_dir(case)
    _edit(
        case,
        SUMMARY,
        lambda t: t.replace(
            "No errors encountered during test.", "1 ERROR encountered. See detailed log."
        ),
    )
    assert parse_dir(case).errors == ["error_runtime: boom"]
    _edit(case, DETAIL, lambda t: t.replace('"is_error": true', '"is_error": false'))
    with pytest.raises(ParseError, match="error_runtime is not marked as an error"):
        parse_dir(case)


@pytest.mark.parametrize("how", ["directory", "symlink", "fifo"])
def test_log_that_is_not_a_regular_file(tmp_path: Path, how: str) -> None:
    case = _copy(tmp_path)
    (case / DETAIL).unlink()
    if how == "directory":
        (case / DETAIL).mkdir()
    elif how == "symlink":
        os.symlink(SERVER / DETAIL, case / DETAIL)
    else:
        os.mkfifo(case / DETAIL)
    with pytest.raises(ParseError, match="mlperf_log_detail.txt: is "):
        parse_dir(case)


def test_summary_alone_must_be_consistent(tmp_path: Path) -> None:
    """Without a detail log the summary's own redundancy is checked: the stream metric is
    printed twice, an INVALID run lists one recommendation per failed check, and early
    stopping never fails Offline."""
    stream = _copy(tmp_path, PUBLISHED_LOGS["lenovo-l40s-3dunet-singlestream"])
    (stream / DETAIL).unlink()
    _edit(
        stream,
        SUMMARY,
        lambda t: t.replace(
            "90th percentile latency (ns) : 490365362", "90th percentile latency (ns) : 490365361"
        ),
    )
    with pytest.raises(ParseError, match="vs '90.00 percentile latency \\(ns\\)' '490365362'"):
        parse_dir(stream)
    offline = tmp_path / "offline"
    shutil.copytree(OFFLINE, offline, ignore=_only_logs)
    (offline / DETAIL).unlink()
    _edit(
        offline,
        SUMMARY,
        lambda t: t.replace(
            "Early stopping satisfied: Yes", "Early stopping satisfied: NO"
        ).replace("Result is : VALID", "Result is : INVALID\nRecommendations:"),
    )
    with pytest.raises(ParseError, match="early stopping never fails Offline"):
        parse_dir(offline)
    _edit(
        offline,
        SUMMARY,
        lambda t: t.replace(
            "Early stopping satisfied: NO", "Early stopping satisfied: Yes"
        ).replace("Min duration satisfied : Yes", "Min duration satisfied : NO"),
    )
    with pytest.raises(ParseError, match="0 recommendation lines for 1 failed checks"):
        parse_dir(offline)
    _edit(
        offline,
        SUMMARY,
        lambda t: t.replace("Recommendations:", "Recommendations:\n * Increase expected QPS."),
    )
    assert [r.code for r in parse_dir(offline).invalid_reasons] == ["min_duration_not_met"]
