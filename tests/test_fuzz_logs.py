"""Fuzz the parser with damaged copies of real LoadGen logs (ours and published ones).

The oracle is the parser's rule: a damaged log is either reported exactly as its original
(same validity, metric, flags and reasons, hence the same verdict) or it is unreadable
(:class:`ParseError`). Anything else (a traceback, another verdict, a non-finite number in
the record) is a mishandled mutation. Fixed seed; sized to run in well under a minute.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.backends.reference import ReferenceBackend
from pytest_mlperf.errors import ParseError
from pytest_mlperf.results.loadgen import DETAIL, SUMMARY, ParsedLog, parse_dir
from pytest_mlperf.results.logfile import MAX_LINE_BYTES
from pytest_mlperf.verdict import judge_performance
from tests.loadgen_runs import run_tiny
from tests.shared_data import PUBLISHED_LOGS, require_shared

MUTATIONS = 2400
SEED = 19
_BAD_NUMBERS = (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1", b"0", b"1" * 400)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> list[Path]:
    """Published logs plus our own, VALID and INVALID, as LoadGen wrote them."""
    root = tmp_path_factory.mktemp("fuzz-originals")
    backend = ReferenceBackend(model_cache)
    ours = {
        "offline": ("Offline", {"min_duration_ms": 0}),
        "server": ("Server", {"min_duration_ms": 0}),
        "offline_short": ("Offline", {"expected_qps": 20, "min_duration_ms": 3000}),
        "ss_early": ("SingleStream", {"min_query_count": 20, "min_duration_ms": 0}),
    }
    dirs = [run_tiny(backend, root / n, s, overrides=o) for n, (s, o) in ours.items()]
    backend.close()
    for name, source in sorted(PUBLISHED_LOGS.items()):
        shutil.copytree(require_shared(source), root / name)
        dirs.append(root / name)
    for path in dirs:  # only the two logs the parser reads
        for extra in path.iterdir():
            if extra.name not in (DETAIL, SUMMARY):
                extra.unlink()
    return dirs


def projection(parsed: ParsedLog) -> tuple[Any, ...]:
    """What a verdict is made of."""
    return (
        parsed.scenario,
        parsed.mode,
        parsed.result_validity,
        parsed.metric_name,
        parsed.metric_value,
        parsed.early_stopping_met,
        parsed.min_duration_met,
        parsed.min_queries_met,
        parsed.perf_constraints_met,
        sorted((r.code, r.message) for r in parsed.invalid_reasons),
        judge_performance(parsed, True, None).outcome,
        judge_performance(parsed, False, None).outcome,
    )


Mutation = Callable[[random.Random, bytes], bytes]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def flip_byte(rng: random.Random, data: bytes) -> bytes:
    pos = rng.randrange(len(data))
    return data[:pos] + bytes([rng.randrange(256)]) + data[pos + 1 :]


def flip_digit(rng: random.Random, data: bytes) -> bytes:
    digits = [i for i, b in enumerate(data) if 48 <= b <= 57]
    pos = rng.choice(digits)
    new = rng.choice([d for d in b"0123456789" if d != data[pos]])
    return data[:pos] + bytes([new]) + data[pos + 1 :]


def delete_line(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def duplicate_line(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    line = rng.choice(lines)
    lines.insert(rng.randrange(len(lines) + 1), line)
    return b"\n".join(lines)


def duplicate_changed(rng: random.Random, data: bytes) -> bytes:
    """A copy of a line with one digit or word changed, before or after the original."""
    lines = _lines(data)
    index = rng.randrange(len(lines))
    copy = lines[index]
    for old, new in ((b"INVALID", b"VALID"), (b"VALID", b"INVALID"), (b"NO", b"Yes")):
        if old in copy:
            copy = copy.replace(old, new, 1)
            break
    else:
        if any(48 <= b <= 57 for b in copy):
            copy = flip_digit(rng, copy)
    lines.insert(index + rng.choice((0, 1)), copy)
    return b"\n".join(lines)


def swap_words(rng: random.Random, data: bytes) -> bytes:
    pairs = [(b"true", b"false"), (b"false", b"true"), (b"Yes", b"NO"), (b"NO", b"Yes")]
    pairs += [(b'"VALID"', b'"INVALID"'), (b'"INVALID"', b'"VALID"'), (b"VALID", b"INVALIE")]
    pairs += [(b": VALID", b": INVALID"), (b'is_error": false', b'is_error": true')]
    old, new = rng.choice([p for p in pairs if p[0] in data] or [(b"", b"")])
    if not old:
        return data
    spots = [i for i in range(len(data)) if data.startswith(old, i)]
    pos = rng.choice(spots)
    return data[:pos] + new + data[pos + len(old) :]


def bad_number(rng: random.Random, data: bytes) -> bytes:
    """A number of a result/metric line replaced by NaN, Infinity, 1e999, -1, 0, 400 digits."""
    lines = _lines(data)
    targets = [
        i
        for i, line in enumerate(lines)
        if (b'"result_' in line or b"second" in line or b"latency (ns)" in line)
        and any(48 <= b <= 57 for b in line)
    ]
    index = rng.choice(targets)
    line = lines[index]
    if line.startswith(b":::MLLOG"):
        key_end = line.index(b'"value": ') + len(b'"value": ')
        end = line.index(b",", key_end)
        lines[index] = line[:key_end] + rng.choice(_BAD_NUMBERS) + line[end:]
    else:
        label, _, _ = line.partition(b":")
        lines[index] = label + b": " + rng.choice((*_BAD_NUMBERS, b"inf", b"nan"))
    return b"\n".join(lines)


def deep_json(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    depth = rng.choice((50, 1100, 5000))
    value = b"[" * depth + b"]" * depth
    bad = b':::MLLOG {"key": "result_validity", "value": ' + value + b', "metadata": {}}'
    lines.insert(rng.randrange(len(lines) + 1), bad)
    return b"\n".join(lines)


def join_lines(rng: random.Random, data: bytes) -> bytes:
    newlines = [i for i, b in enumerate(data) if b == 10]
    pos = rng.choice(newlines)
    return data[:pos] + data[pos + 1 :]


MUTATORS: tuple[Mutation, ...] = (
    truncate,
    flip_byte,
    flip_digit,
    delete_line,
    duplicate_line,
    duplicate_changed,
    swap_words,
    bad_number,
    deep_json,
    join_lines,
)


def _damage_files(rng: random.Random, case: Path) -> str:
    """Replace, remove or link one of the two files."""
    name = rng.choice((DETAIL, SUMMARY))
    target = case / name
    how = rng.choice(("dir", "symlink", "remove", "empty"))
    target.unlink()
    if how == "dir":
        target.mkdir()
    elif how == "symlink":
        other = case / (SUMMARY if name == DETAIL else DETAIL)
        os.symlink(other if other.exists() else "/dev/null", target)
    elif how == "empty":
        target.write_bytes(b"")
    return f"{how} {name}"


def _baseline(case: Path) -> ParsedLog | None:
    """The original's result for the files a mutation left (summary alone, detail alone)."""
    try:
        return parse_dir(case)
    except ParseError:
        return None


def test_fuzzed_logs_never_pass_a_damaged_log(originals: list[Path], tmp_path: Path) -> None:
    rng = random.Random(SEED)
    references: dict[tuple[str, tuple[str, ...]], Any] = {}
    for original in originals:
        for files in ((DETAIL, SUMMARY), (DETAIL,), (SUMMARY,)):
            view = tmp_path / "ref" / original.name / "+".join(files)
            view.mkdir(parents=True)
            for name in files:
                shutil.copy(original / name, view / name)
            references[(original.name, files)] = _baseline(view)
        assert references[(original.name, (DETAIL, SUMMARY))] is not None, original
    mishandled: list[str] = []
    unreadable = 0
    for n in range(MUTATIONS):
        original = rng.choice(originals)
        case = tmp_path / f"m{n}"
        shutil.copytree(original, case)
        if rng.random() < 0.08:
            what = _damage_files(rng, case)
        else:
            name = rng.choice((DETAIL, DETAIL, SUMMARY))
            mutate = rng.choice(MUTATORS)
            data = (case / name).read_bytes()
            damaged = mutate(rng, data)
            (case / name).write_bytes(damaged)
            what = f"{mutate.__name__} {name}" + (" (no change)" if damaged == data else "")
        left = tuple(
            f for f in (DETAIL, SUMMARY) if (case / f).is_file() and not (case / f).is_symlink()
        )
        try:
            parsed = parse_dir(case)
        except ParseError:
            unreadable += 1
            shutil.rmtree(case)
            continue
        except Exception as exc:  # the oracle: no traceback from any input
            mishandled.append(f"{n} {original.name} {what}: {type(exc).__name__}: {exc}")
            continue
        reference = references.get((original.name, left))
        json.dumps(parsed.record_fields(), allow_nan=False)  # finite, JSON-ready
        if reference is None or projection(parsed) != projection(reference):
            mishandled.append(
                f"{n} {original.name} {what}: reported {parsed.result_validity} "
                f"{parsed.metric_value} {[r.code for r in parsed.invalid_reasons]}"
            )
        shutil.rmtree(case)
    assert mishandled == [], f"{len(mishandled)} of {MUTATIONS}:\n" + "\n".join(mishandled[:40])
    assert unreadable > MUTATIONS // 2  # the damage is mostly detected, not mostly no-ops


def test_huge_line_without_newlines_is_bounded(tmp_path: Path) -> None:
    detail = tmp_path / DETAIL
    with detail.open("wb") as fh:
        fh.write(b':::MLLOG {"key": "x", "value": "')
        chunk = b"a" * (1 << 20)
        for _ in range(MAX_LINE_BYTES // len(chunk) + 4):
            fh.write(chunk)
    tracemalloc.start()
    try:
        with pytest.raises(ParseError, match=r":1: line longer than"):
            parse_dir(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * MAX_LINE_BYTES
