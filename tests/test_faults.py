"""Faults and hostile input: clear errors, nothing passed through a shell, nothing lost."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_mlperf.backends.reference import ReferenceBackend
from pytest_mlperf.errors import ParseError
from pytest_mlperf.results.loadgen import DETAIL, SUMMARY, parse_dir
from tests.conftest import TINY_CONFTEST, RunMlperf
from tests.loadgen_runs import run_tiny

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


@pytest.fixture(scope="module")
def valid_logs(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    out = tmp_path_factory.mktemp("valid") / "Server"
    run_tiny(ReferenceBackend(model_cache), out, "Server", overrides={"min_duration_ms": 0})
    assert parse_dir(out).result_validity == "VALID"
    return out


def test_truncated_logs_never_crash_and_never_pass_short(valid_logs: Path, tmp_path: Path) -> None:
    """Cut the detail log at many byte positions (empty, mid-line, mid-JSON): the parser
    answers with a ParseError or a record; VALID only once the metric itself was read."""
    data = (valid_logs / DETAIL).read_bytes()
    positions = sorted({0, 1, len(data) - 1, *range(0, len(data), max(1, len(data) // 150))})
    for cut in positions:
        case = tmp_path / f"cut{cut}"
        case.mkdir()
        (case / DETAIL).write_bytes(data[:cut] + b"\xff\xfe\x00 not utf-8")
        try:
            parsed = parse_dir(case)
        except ParseError:
            continue
        if parsed.result_validity == "VALID":
            assert parsed.metric_value is not None, cut


def test_duplicated_and_missing_keys(valid_logs: Path, tmp_path: Path) -> None:
    lines = (valid_logs / DETAIL).read_text().splitlines()
    validity = next(line for line in lines if '"key": "result_validity"' in line)
    dup = tmp_path / "dup"
    dup.mkdir()
    # a second check logging INVALID makes the run INVALID, whatever came first
    (dup / DETAIL).write_text("\n".join([*lines, validity.replace('"VALID"', '"INVALID"')]) + "\n")
    assert parse_dir(dup).result_validity == "INVALID"
    missing = tmp_path / "missing"
    missing.mkdir()
    drop = ('"result_completed_samples_per_sec"', '"result_scheduled_samples_per_sec"')
    (missing / DETAIL).write_text(
        "\n".join(line for line in lines if not any(d in line for d in drop))
    )
    parsed = parse_dir(missing)  # VALID logged, but not the metric: incomplete, never a pass
    assert parsed.metric_value is None and parsed.result_validity is None
    assert [r.code for r in parsed.invalid_reasons] == ["incomplete_log"]
    (missing / SUMMARY).write_text("")  # an empty summary is no fallback either
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
from pytest_mlperf.plugin import SESSION_KEY

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
