"""Faults and hostile input: clear errors, nothing passed through a shell, nothing lost."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_mlperf.errors import ParseError
from pytest_mlperf.results.loadgen import DETAIL, SUMMARY, parse_dir
from pytest_mlperf.results.store import MIN_FREE_BYTES
from tests.conftest import TINY_CONFTEST, RunMlperf
from tests.shared_data import PUBLISHED_LOGS, require_shared

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_mlperf"


def test_no_shell_anywhere_in_the_package() -> None:
    """Commands are argument lists: no shell=True, no os.system, no os.popen."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                if func in (
                    "os.system",
                    "os.popen",
                    "subprocess.getoutput",
                    "subprocess.getstatusoutput",
                ):
                    offenders.append(f"{path.name}:{node.lineno} {func}")
                for kw in node.keywords:
                    if kw.arg == "shell" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        offenders.append(f"{path.name}:{node.lineno} shell=")
    assert offenders == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mlperf-benchmarks=bert;rm -rf /"], "*unknown benchmark 'bert;rm -rf /'; valid:*"),
        (["--mlperf-benchmarks=$(reboot)"], "*unknown benchmark '$(reboot)'; valid:*"),
        (["--mlperf-benchmarks=bert 99"], "*unknown benchmark 'bert 99'; valid:*"),
        (["--mlperf-benchmarks=bért"], "*unknown benchmark 'bért'; valid:*"),
        (
            ["--mlperf-benchmarks=../../etc/passwd"],
            "*unknown benchmark '../../etc/passwd'; valid:*",
        ),
        (["--mlperf-scenarios=Offline`id`"], "*unknown scenario 'Offline`id`'; valid:*"),
        (
            ["--mlperf-benchmarks=" + ",".join(["bert"] * 5000 + ["nope"])],
            "*unknown benchmark 'nope'; valid:*",
        ),
        (["--mlperf-devices=0;id"], "*--mlperf-devices: invalid device '0;id'*"),
        (
            ["--mlperf-docker-host=http://evil"],
            "*--mlperf-docker-host: invalid engine address 'http://evil'*",
        ),
        (["--mlperf-mode=performance && id"], "*--mlperf-mode: invalid value 'performance && id'*"),
    ],
)
def test_hostile_option_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "Traceback" not in result.stderr.str()


def test_a_long_list_of_valid_names_is_fine(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--mlperf-benchmarks=" + ",".join(["bert", "3d-unet"] * 2000), "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(["5 tests collected*"])  # duplicates collapse


PUBLISHED_SERVER = PUBLISHED_LOGS["nvidia-h200-retinanet-server"]


def test_truncated_logs_never_crash_and_never_pass_short(tmp_path: Path) -> None:
    """Cut the detail log at many byte positions (empty, mid-line, mid-JSON): every cut
    is unreadable (ParseError), never a record (the parser's rule, see test_parser_damage)."""
    data = (require_shared(PUBLISHED_SERVER) / DETAIL).read_bytes()
    positions = sorted({0, 1, len(data) - 1, *range(0, len(data), max(1, len(data) // 150))})
    for cut in positions:
        case = tmp_path / f"cut{cut}"
        case.mkdir()
        (case / DETAIL).write_bytes(data[:cut] + b"\xff\xfe\x00 not utf-8")
        with pytest.raises(ParseError):
            parse_dir(case)


def test_duplicated_and_missing_keys(tmp_path: Path) -> None:
    lines = (require_shared(PUBLISHED_SERVER) / DETAIL).read_text().splitlines()
    validity = next(line for line in lines if '"key": "result_validity"' in line)
    dup = tmp_path / "dup"
    dup.mkdir()
    # a second validity with another value: which is LoadGen's cannot be told
    (dup / DETAIL).write_text("\n".join([*lines, validity.replace('"VALID"', '"INVALID"')]) + "\n")
    with pytest.raises(ParseError, match="result_validity logged twice"):
        parse_dir(dup)
    missing = tmp_path / "missing"
    missing.mkdir()
    drop = ('"result_completed_samples_per_sec"', '"result_scheduled_samples_per_sec"')
    (missing / DETAIL).write_text(
        "\n".join(line for line in lines if not any(d in line for d in drop))
    )
    with pytest.raises(ParseError, match="cut short or a line is missing"):
        parse_dir(missing)  # VALID logged, but not the metric: never a pass
    (missing / SUMMARY).write_text("")  # an empty summary changes nothing
    with pytest.raises(ParseError):
        parse_dir(missing)


def test_results_dir_that_cannot_be_a_directory_is_a_usage_error(pytester: pytest.Pytester) -> None:
    blocker = pytester.makefile(".txt", results="a file where the results directory should be")
    for target in (blocker, blocker / "sub"):
        result = pytester.runpytest("--mlperf-benchmarks=bert", f"--mlperf-results-dir={target}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                f"ERROR: --mlperf-results-dir: '{target}' cannot be a directory: '{blocker}' is a file"
            ]
        )


def test_results_json_write_failure_is_reported_not_an_internal_error(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    """The run directory disappears mid-session (replaced by a file): items still run and
    report; the failure to write results.json is said plainly."""
    pytester.makepyfile(
        test_sabotage="""
import shutil
from pytest_mlperf.stash import SESSION_KEY

def test_zz_break_results_dir(pytestconfig):
    root = pytestconfig.stash[SESSION_KEY].store.root
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    root.write_text("not a directory any more")
"""
    )
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        "-p",
        "no:randomly",
    )
    out = result.stdout.str()
    assert "INTERNALERROR" not in out
    result.stdout.fnmatch_lines(
        [
            "*could not be prepared: cannot write *",  # the item says why it could not run
            "*results.json could not be written: cannot write *results.json*",
        ]
    )


def test_two_sessions_at_once_share_the_build_and_keep_their_own_results(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(TINY_CONFTEST)
    cache = pytester.path / "shared-cache"
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
        f"--mlperf-cache-dir={cache}",
    ]
    procs = [
        subprocess.Popen(
            args, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    runs = sorted((pytester.path / "mlperf-results").glob("*/results.json"))
    assert len(runs) == 2  # distinct run directories
    builds = []
    for run in runs:
        data = json.loads(run.read_text())
        assert len(data["items"]) == 2
        assert {Path(i["item_dir"]).parents[2] for i in data["items"]} == {run.parent}
        builds += [
            w for p in data["preparations"] for w in p["work"] if w.startswith("built model")
        ]
    assert len(builds) == 1  # one session built, the other waited on the lock and reused it


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB file system of its own (tmpfs), unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mount is not permitted here: {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


#: conftest addition: fill the file system to the last byte before the SingleStream item
#: starts, or (DURING) once its LoadGen run has created its log files.
FILL = """
import errno, os, threading, time
from pathlib import Path

ROOT, DURING = Path({root!r}), {during!r}

def fill():
    if DURING:
        deadline = time.monotonic() + 120
        pattern = "*/tiny-99/SingleStream/performance/mlperf_log_detail.txt"
        while not list(ROOT.glob(pattern)) and time.monotonic() < deadline:
            time.sleep(0.002)
    fd = os.open(ROOT / "filler", os.O_WRONLY | os.O_CREAT)
    for size in (1 << 16, 1 << 12, 1):
        try:
            while True:
                os.write(fd, b"x" * size)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    os.close(fd)

def pytest_runtest_setup(item):
    if item.nodeid == "mlperf::tiny-99[SingleStream-performance]":
        if DURING:
            threading.Thread(target=fill, daemon=True).start()
        else:
            fill()
"""


def test_disk_full_mid_session_keeps_what_was_written(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, small_tmpfs: Path
) -> None:
    """The results file system fills up after the first item: the next items fail with the
    reason and the path, results.json keeps the first item (atomic replace), nothing is
    left half-written, and the session ends normally."""
    pytester.makeconftest(TINY_CONFTEST + FILL.format(root=str(small_tmpfs), during=False))
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream,Server",
        "--mlperf-fast",
        f"--mlperf-results-dir={small_tmpfs}",
        "--junitxml=junit.xml",
    )
    assert shutil.disk_usage(small_tmpfs).free < MIN_FREE_BYTES  # it really was full
    out = result.stdout.str()
    assert "INTERNALERROR" not in out + result.stderr.str()
    result.assert_outcomes(passed=1, failed=2)
    (run,) = [p for p in small_tmpfs.iterdir() if p.is_dir()]
    result.stdout.fnmatch_lines(
        [
            f"*cannot write {run}/results.json: No space left on device",  # a real ENOSPC
            f"MlperfError: no space left for results: {run}/tiny-99/SingleStream/performance "
            "has * bytes free (an item needs at least 1048576 for its logs)",
            f"results.json could not be written: cannot write {run}/results.json: "
            "No space left on device",
        ]
    )
    data = json.loads((run / "results.json").read_text())  # the last complete version
    assert [i["scenario"] for i in data["items"]] == ["Offline"]
    assert data["items"][0]["verdict"]["outcome"] == "passed" and data["finished"] is None
    first = json.loads((run / "tiny-99" / "Offline" / "performance" / "result.json").read_text())
    assert first["verdict"]["outcome"] == "passed"
    assert [p.name for p in small_tmpfs.rglob("*.tmp")] == []  # no half-written file
    assert not (run / "tiny-99" / "SingleStream" / "performance" / "result.json").exists()
    junit = (pytester.path / "junit.xml").read_text()  # the reports elsewhere have all three
    assert junit.count("<testcase") == 3 and 'failures="2"' in junit
    assert "no space left for results" in junit


def test_disk_full_during_a_run_is_named_as_the_cause(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, small_tmpfs: Path
) -> None:
    """The disk fills while LoadGen runs (it writes empty or cut logs without complaint):
    the item's error says the disk is full, then what went wrong because of it."""
    pytester.makeconftest(TINY_CONFTEST + FILL.format(root=str(small_tmpfs), during=True))
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
        f"--mlperf-results-dir={small_tmpfs}",
    )
    result.assert_outcomes(passed=1, failed=1)
    (run,) = [p for p in small_tmpfs.iterdir() if p.is_dir()]
    result.stdout.fnmatch_lines(
        [
            f"MlperfError: no space left for results: {run}/tiny-99/SingleStream/performance "
            "has * bytes free (an item needs at least 1048576 for its logs); so: *Error: *"
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str()
    assert [p.name for p in small_tmpfs.rglob("*.tmp")] == []


def test_read_only_results_directory_is_a_usage_error(
    pytester: pytest.Pytester, small_tmpfs: Path
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    assert not os.access(small_tmpfs, os.W_OK)  # even for root
    pytester.makeconftest(TINY_CONFTEST)
    for target in (small_tmpfs, small_tmpfs / "results"):
        result = pytester.runpytest("--mlperf-benchmarks=tiny", f"--mlperf-results-dir={target}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                f"ERROR: --mlperf-results-dir: '{target}' cannot be written: "
                f"'{small_tmpfs}' is on a read-only file system"
            ]
        )
    # collecting writes nothing, so it still works
    listed = pytester.runpytest(
        "--mlperf-benchmarks=tiny", f"--mlperf-results-dir={small_tmpfs}", "--collect-only", "-q"
    )
    assert listed.ret == pytest.ExitCode.OK
