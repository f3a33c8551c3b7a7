"""Golden runs: fixed pytest-mlperf sessions whose results.json, JUnit XML and HTML report must
come out byte-for-byte the same after a refactor (issue 27: "moves only").

    python3 bench/golden.py capture --src CHECKOUT --out DIR
    python3 bench/golden.py compare --src CHECKOUT [--ref DIR]

Each session runs ``python3 -m pytest`` in a subprocess, in a fresh temporary directory, with
``PYTHONPATH=CHECKOUT`` (the package under test is that checkout's ``pytest_mlperf``). Every
item runs on the nvidia backend against the stand-in harness (``tests/standin`` of the
checkout, in a Docker image built from scratch + busybox-static), which hands back published
NVIDIA v4.1 LoadGen logs (``../shared/data``), so every figure and verdict is decided by the
code alone. Only the volatile fields listed in :data:`VOLATILE_KEYS` and :data:`VOLATILE_TEXT`
are normalised; everything else must be identical.
"""

from __future__ import annotations

import argparse
import difflib
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# mypy reads tests/standin/ (the directory) for tests.standin; Python imports tests/standin.py
from tests.standin import fill_rootfs  # type: ignore[attr-defined]  # noqa: E402

HERE = Path(__file__).resolve()
DEFAULT_REF = Path("/work/golden/ref")

# -- what is normalised (the whole list) --------------------------------------------------
#: JSON keys (results.json, and the pytest-html data blob) whose values are volatile:
#: timestamps, durations, host load, lock timing, the run id (time + pid), content hashes
#: over the image (its id differs per build) and pytest-html's per-test durations.
VOLATILE_KEYS = frozenset(
    {
        "started",
        "finished",
        "run_id",
        "run_s",
        "item_s",
        "seconds",
        "wait_s",
        "held_from",
        "held_until",
        "loadavg_before",
        "loadavg_after",
        "steal_pct",
        "others_cpu_pct",
        "image_id",
        "id",  # provenance id: a hash over the inputs, image_id among them
        "settings_sha256",
        "fingerprint_id",
        "duration",
        "Platform",
    }
)
#: regexes applied to every captured file, in order: (pattern, replacement)
VOLATILE_TEXT: tuple[tuple[str, str], ...] = (
    (r"\d{8}-\d{6}-\d+", "<run-id>"),  # results run dir: date-time-pid
    (r"pytest-mlperf/harness:[0-9a-f]{16}", "pytest-mlperf/harness:<tag>"),  # from the path
    (r"sha256:[0-9a-f]{64}", "sha256:<image>"),
    (r"pytest-mlperf-[A-Za-z0-9_.-]+-[0-9a-f]{8}\b", "pytest-mlperf-<container>"),
    (r'(timestamp|time|hostname)="[^"]*"', r'\1="<volatile>"'),  # JUnit testsuite/testcase
    (r'(name="mlperf/[^"]*/(?:run_s|item_s|wait_s)") value="[^"]*"', r'\1 value="<volatile>"'),
    (r"\b\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(\+00:00|Z)?", "<time>"),  # trend plot, logs
    (r"\bseconds=\d+(\.\d+)?", "seconds=<n>"),  # HTML host table: engine build time
    (r"Report generated on [^<]*", "Report generated on <date>"),  # pytest-html
    (r"\d+ tests? took [^<.]*\.", "<n> tests took <duration>."),  # pytest-html summary
    (r"\bin \d+(\.\d+)? ?s\b", "in <n> s"),  # "built engine ... in 0.1 s", "done in 0.3 s"
    (r"\.pytest-mlperf/build/[0-9a-f]{12}", ".pytest-mlperf/build/<path-hash>"),  # of the path
    (r"col-duration\\&quot;&gt;[0-9:]+( ms)?", "col-duration\\&quot;&gt;<duration>"),  # html
    # hashes over the image (unique per capture): engine keys, history fingerprint ids,
    # the provenance id's short form
    (r"\b[0-9a-f]{24}\b", "<engine-key>"),
    (r"fingerprint [0-9a-f]{16}\b", "fingerprint <fingerprint>"),
    (r"provenance [0-9a-f]{16}\b", "provenance <provenance>"),
)


# -- the sessions -------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One pytest invocation of a session; ``logs`` picks the LoadGen logs per scenario."""

    args: tuple[str, ...]
    conf: Mapping[str, str] = field(default_factory=dict)
    logs: Mapping[str, str] = field(default_factory=dict)
    #: also keep the ``[mlperf]`` lines of the terminal (a dry run answers only there)
    terminal: bool = False


@dataclass(frozen=True)
class Session:
    name: str
    steps: tuple[Step, ...]
    why: str


BERT = ("--mlperf-benchmarks=bert",)
FAST = ("--mlperf-fast",)
HISTORY = (
    "--mlperf-scenarios=Offline",
    *FAST,
    "--mlperf-history=history.sqlite",
    "--mlperf-history-ref=main",
    "--mlperf-history-window=2",
)
#: a harness on 8 H200s: it registers no bert SingleStream config for them (nor do we)
H200X8 = {
    "gpu_name": "NVIDIA H200",
    "gpu_count": "8",
    "cpu_name": "Intel(R) Xeon(R) Platinum 8480C",
}
SESSIONS: tuple[Session, ...] = (
    Session(
        "nvidia-all",
        (Step((*BERT, "--mlperf-mode=all", *FAST, "--mlperf-system=H100-SXM-80GBx8")),),
        "bert, 3 scenarios x performance + accuracy, shipped H100 thresholds: all pass",
    ),
    Session(
        "thresholds-skip",
        (
            Step(
                (*BERT, *FAST, "--mlperf-thresholds=thresholds.json", "--mlperf-system=golden"),
                conf=H200X8,
            ),
        ),
        "8 H200s: an Offline floor above the run fails; SingleStream has no config: skipped",
    ),
    Session(
        "invalid-accuracy",
        (
            Step(
                (*BERT, "--mlperf-scenarios=Offline,Server", "--mlperf-mode=all", *FAST),
                conf={"accuracy": "89.0"},
                logs={"Server": "invalid-server"},
            ),
        ),
        "an INVALID Server run (early stopping, latency) fails; the harness's F1 89.0 fails",
    ),
    Session(
        "baseline",
        (
            Step((*BERT, "--mlperf-scenarios=Offline,Server", *FAST, "--mlperf-save-baseline=b")),
            Step(
                (*BERT, "--mlperf-scenarios=Offline,Server", *FAST, "--mlperf-baseline=b"),
                logs={"Offline": "l4-offline"},
            ),
        ),
        "saved baseline, then a slower Offline (an L4's log) regresses against it",
    ),
    Session(
        "history",
        (
            Step((*BERT, *HISTORY)),
            Step((*BERT, *HISTORY)),
            Step((*BERT, *HISTORY), logs={"Offline": "l4-offline"}),
        ),
        "two sessions into a history store (window 2), then a slower one judged against them",
    ),
    Session(
        "dry-run",
        (
            Step((*BERT, "--mlperf-scenarios=Offline", *FAST)),  # builds the image
            Step(("--mlperf-benchmarks=bert,3d-unet", "--mlperf-dry-run"), terminal=True),
        ),
        "a run builds the image; then the harness's own config resolution for every item",
    ),
)
THRESHOLDS = {
    "schema_version": 1,
    "system": "golden",
    "source": "bench/golden.py: an Offline floor no replayed run reaches",
    "thresholds": [
        {"benchmark": "bert-99", "scenario": "Offline", "min_samples_per_second": 100000},
        {"benchmark": "bert-99", "scenario": "SingleStream", "max_latency_ms": 5},
    ],
}


# -- the stand-in harness and its logs ----------------------------------------------------
def shared_data(src: Path) -> Path:
    """``../shared/data`` beside the checkout (as the tests find it), else /work/shared/data."""
    for candidate in (src.parent / "shared" / "data", Path("/work/shared/data")):
        if candidate.is_dir():
            return candidate
    raise SystemExit(f"golden: no shared data beside {src} (../shared/data)")


def log_sources(data: Path) -> dict[str, Path]:
    """Published LoadGen logs by name (``<Scenario>`` = the stand-in's default for it)."""
    harness_logs = data / "nvidia-harness-v4.1-logs" / "bert-99"
    results = data / "mlperf-inference-results-v4.1" / "closed"
    return {
        **{s: harness_logs / s / "performance" for s in ("Offline", "Server", "SingleStream")},
        "l4-offline": results / "Lenovo/results/Lenovo_2xL4_TRT/bert-99/Offline/performance/run_1",
    }


def invalid_server(source: Path, into: Path) -> None:
    """The published Server detail log as an INVALID run: early stopping and latency not met
    (no summary log, which would say otherwise)."""
    into.mkdir(parents=True)
    changes: dict[str, Any] = {
        "result_validity": "INVALID",
        "early_stopping_met": False,
        "result_perf_constraints_met": False,
    }
    lines = []
    for line in (source / "mlperf_log_detail.txt").read_text().splitlines():
        prefix, _, body = line.partition("{")
        entry = json.loads("{" + body)
        if entry.get("key") in changes:
            entry["value"] = changes[entry["key"]]
        lines.append(prefix + json.dumps(entry))
    (into / "mlperf_log_detail.txt").write_text("\n".join(lines) + "\n")
    shutil.copy2(source / "mlperf_log_accuracy.json", into / "mlperf_log_accuracy.json")


def make_harness(src: Path, root: Path, conf: Mapping[str, str]) -> Path:
    """The checkout's stand-in harness in ``root/harness``: rootfs, logs, a git commit with
    fixed dates (so its commit hash is the same on every capture)."""
    standin = src / "tests" / "standin"
    harness = root / "harness"
    shutil.copytree(standin / "harness", harness)
    rootfs = harness / "docker" / "rootfs"
    busybox = shutil.which("busybox")
    if busybox is None:
        raise SystemExit("golden: busybox-static is not installed")
    fill_rootfs(rootfs, standin, Path(busybox))
    # an image of this session's own (git ignores rootfs/: the commit stays the same)
    (rootfs / "golden-session").write_text(f"{root}\n")
    write_conf(harness, conf)
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(harness), "-c", "user.name=g", "-c", "user.email=g@g", *args],
            check=True,
            capture_output=True,
            env=env,
        )

    git("init", "-q")
    control = ("standin.conf", "standin-calls.log", "standin-logs/", "docker/rootfs/")
    (harness / ".git" / "info" / "exclude").write_text("\n".join(control) + "\n")
    git("add", "-A")
    git("commit", "-q", "-m", "stand-in harness")
    return harness


def write_conf(harness: Path, conf: Mapping[str, str]) -> None:
    lines = ["VERSION=4.1", "MODE=ok", *(f"{k.upper()}='{v}'" for k, v in sorted(conf.items()))]
    (harness / "standin.conf").write_text("\n".join(lines) + "\n")


def stage_logs(harness: Path, sources: Mapping[str, Path], chosen: Mapping[str, str]) -> None:
    """``standin-logs/<Scenario>``: the default log of each scenario unless ``chosen``."""
    logs = harness / "standin-logs"
    shutil.rmtree(logs, ignore_errors=True)
    for scenario in ("Offline", "Server", "SingleStream"):
        name = chosen.get(scenario, scenario)
        if name == "invalid-server":
            invalid_server(sources["Server"], logs / scenario)
        else:
            shutil.copytree(sources[name], logs / scenario)


# -- running ------------------------------------------------------------------------------
def run_session(src: Path, session: Session, out: Path, python: str) -> list[str]:
    """Run ``session``'s steps in a fresh directory; write its normalised files into ``out``.
    Returns problems (a step that crashed the plugin or wrote nothing)."""
    problems: list[str] = []
    root = Path(tempfile.mkdtemp(prefix=f"golden-{session.name}-"))
    try:
        sources = log_sources(shared_data(src))
        harness = make_harness(src, root, {})
        (root / "scratch").mkdir()
        work = root / "work"
        work.mkdir()
        (work / "thresholds.json").write_text(json.dumps(THRESHOLDS, indent=1))
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MLPERF_", "CI"))
        }
        env.update(
            PYTHONPATH=str(src),
            PYTHONHASHSEED="0",
            TZ="UTC",
            COLUMNS="120",
            PYTEST_MLPERF_LOCK_DIR=str(root / "locks"),  # no wait on other sessions' locks
            PYTEST_DISABLE_PLUGIN_AUTOLOAD="",
        )
        env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
        (work / "conftest.py").write_text(CONFTEST)
        seen: set[Path] = set()
        out.mkdir(parents=True, exist_ok=True)
        for number, step in enumerate(session.steps, 1):
            stage_logs(harness, sources, step.logs)
            write_conf(harness, step.conf)
            prefix = "" if len(session.steps) == 1 else f"step{number}-"
            junit, report = work / f"{prefix}junit.xml", work / f"{prefix}report.html"
            command = [
                python,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:randomly",
                "--mlperf-backend=nvidia",
                f"--mlperf-harness-dir={harness}",
                f"--mlperf-scratch-path={root / 'scratch'}",
                "--mlperf-devices=none",
                *step.args,
                f"--junitxml={junit}",
                f"--html={report}",
                "--self-contained-html",
            ]
            done = subprocess.run(
                command, cwd=work, env=env, capture_output=True, text=True, check=False
            )
            (out / f"{prefix}exit-code.txt").write_text(f"{done.returncode}\n")
            output = done.stdout + done.stderr
            if step.terminal:
                lines = [line for line in output.splitlines() if line.startswith("[mlperf]")]
                write(out / f"{prefix}terminal.txt", "".join(f"{x}\n" for x in lines), root, src)
            if "INTERNALERROR" in output or "Traceback" in output:
                problems.append(f"{session.name} step {number}: crashed:\n{output[-3000:]}")
            found = set((work / "mlperf-results").glob("*/results.json")) - seen
            seen |= found
            if len(found) == 1:
                raw = found.pop().read_text()
                if PREPARE_FAILED in raw:  # no golden session expects one: the machine's doing
                    problems.append(f"{FLAKE}: {session.name} step {number}: {PREPARE_FAILED}")
                write(out / f"{prefix}results.json", normalise_json(raw), root, src)
            elif found:
                problems.append(f"{session.name} step {number}: {len(found)} results.json")
            for path in (junit, report):
                if path.exists():
                    text = path.read_text(encoding="utf-8")
                    text = normalise_html(text) if path.suffix == ".html" else text
                    text = one_tag_a_line(text)
                    write(out / path.name, text, root, src)
    finally:
        remove_docker(root)
        shutil.rmtree(root, ignore_errors=True)
    return problems


#: no golden session's backend fails to prepare; when one does (the stand-in's container
#: under a heavy load), the session is captured again
PREPARE_FAILED = "could not be prepared"
FLAKE = "flake"
RETRIES = 2

#: conftest of every golden session: the machine-load check (placement.py) measures the
#: host, which no capture can repeat; its "busy" bounds are lifted so no run is called busy.
CONFTEST = """
import pytest_mlperf.placement as placement

assert hasattr(placement, "BUSY_OTHERS_PCT") and hasattr(placement, "BUSY_STEAL_PCT"), (
    "golden: placement.BUSY_OTHERS_PCT/BUSY_STEAL_PCT moved; update bench/golden.py"
)
placement.BUSY_OTHERS_PCT = placement.BUSY_STEAL_PCT = float("inf")
"""


def write(path: Path, text: str, root: Path, src: Path) -> None:
    """``text`` with the session's volatile text replaced, into ``path``: the session's
    temporary directory, the checkout's path, then :data:`VOLATILE_TEXT`."""
    text = text.replace(str(root.resolve()), "<tmp>").replace(str(root), "<tmp>")
    text = text.replace(str(src), "<src>")
    host = socket.gethostname()
    for pattern, replacement in VOLATILE_TEXT:
        text = re.sub(pattern, replacement, text)
    text = re.sub(rf'"{re.escape(host)}"', '"<host>"', text)
    path.write_text(text, encoding="utf-8")


def one_tag_a_line(text: str) -> str:
    """A newline between adjacent tags (also HTML-escaped ones), so that a diff shows the
    element that differs rather than one 100 kB line; the same for every capture."""
    return re.sub(r"(>|&gt;)(<|&lt;)", "\\1\n\\2", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<volatile>" if k in VOLATILE_KEYS else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def normalise_json(text: str) -> str:
    return json.dumps(_scrub(json.loads(text)), indent=1, sort_keys=False) + "\n"


BLOB = re.compile(r'data-jsonblob="([^"]*)"')


def normalise_html(text: str) -> str:
    """pytest-html's report: its data blob (durations, environment) parsed, scrubbed and
    written out one key a line so that a diff shows the field."""

    def scrub(match: re.Match[str]) -> str:
        blob = _scrub(json.loads(html.unescape(match.group(1))))
        return 'data-jsonblob="\n' + html.escape(json.dumps(blob, indent=1)) + '\n"'

    return BLOB.sub(scrub, text)


def remove_docker(root: Path) -> None:
    """Remove the containers that mount this session's harness, and their image (its own:
    the rootfs holds the session's path), leaving every other session's alone."""

    def docker(*args: str) -> str:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
        return done.stdout

    ids = docker("ps", "-aq", "--filter", "label=pytest-mlperf.managed=true").split()
    if not ids:
        return
    ours: list[str] = []
    images: set[str] = set()
    for line in docker(
        "inspect", "--format", "{{.Id}} {{.Image}} {{json .Mounts}}", *ids
    ).splitlines():
        container, image, mounts = line.split(" ", 2)
        if any(str(m.get("Source", "")).startswith(str(root)) for m in json.loads(mounts)):
            ours.append(container)
            images.add(image)
    if ours:
        docker("rm", "-f", *ours)
    for image in sorted(images):
        docker("rmi", "-f", image)


def capture(src: Path, out: Path, only: Sequence[str] = (), jobs: int = 2) -> int:
    """Run the sessions (``jobs`` at a time) into ``out/<session>/``; 1 if any crashed."""
    from concurrent.futures import ThreadPoolExecutor

    src = src.resolve()
    if not (src / "pytest_mlperf").is_dir():
        raise SystemExit(f"golden: {src} is not a checkout (no pytest_mlperf/)")
    chosen = [s for s in SESSIONS if not only or s.name in only]
    for session in chosen:
        shutil.rmtree(out / session.name, ignore_errors=True)

    def one(session: Session) -> list[str]:
        for attempt in range(RETRIES + 1):
            shutil.rmtree(out / session.name, ignore_errors=True)
            found = run_session(src, session, out / session.name, sys.executable)
            flakes = [p for p in found if p.startswith(FLAKE)]
            if not flakes or attempt == RETRIES:
                break
            print(f"golden: {session.name}: {flakes[0]}; again", flush=True)
        print(f"golden: captured {session.name}", flush=True)
        return found

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        problems = [p for found in pool.map(one, chosen) for p in found]
    for problem in problems:
        print(f"golden: {problem}", file=sys.stderr)
    return 1 if problems else 0


def diff_session(left: Path, right: Path, name: str, excerpt: int) -> tuple[int, list[str]]:
    """(files compared, report lines for each file that differs) of one session."""
    paths = sorted(
        {p.relative_to(left) for p in left.rglob("*") if p.is_file()}
        | {p.relative_to(right) for p in right.rglob("*") if p.is_file()}
    )
    lines: list[str] = []
    for rel in paths:
        a, b = left / rel, right / rel
        old = a.read_text().splitlines() if a.exists() else []
        now = b.read_text().splitlines() if b.exists() else []
        if a.exists() and b.exists() and old == now:
            continue
        state = "missing" if not b.exists() else "new" if not a.exists() else "differs"
        lines.append(f"golden: DIFFERENT {name}/{rel} ({state})")
        diff = list(difflib.unified_diff(old, now, f"ref/{name}/{rel}", f"new/{name}/{rel}", n=2))
        lines += [f"    {line[:400]}" for line in diff[:excerpt]]
        if len(diff) > excerpt:
            lines.append(f"    ... {len(diff) - excerpt} more diff lines")
    return len(paths), lines


def compare(
    src: Path, ref: Path, only: Sequence[str] = (), jobs: int = 2, excerpt: int = 60
) -> int:
    """Capture ``src`` afresh and diff it against ``ref``: 0 when every file is identical.

    A session that differs is captured once more and reported only if it differs again
    (a busy machine can upset one run of the stand-in; a changed output differs twice)."""
    if not ref.is_dir():
        raise SystemExit(f"golden: no reference at {ref} (capture one first)")
    names = [s.name for s in SESSIONS if not only or s.name in only]
    with tempfile.TemporaryDirectory(prefix="golden-new-") as new:
        code = capture(src, Path(new), names, jobs)
        files = 0
        report: list[str] = []
        failed = 0
        for name in names:
            count, lines = diff_session(ref / name, Path(new) / name, name, excerpt)
            if lines:
                print(f"golden: {name} differs; capturing it once more", flush=True)
                code = max(code, capture(src, Path(new), [name], 1))
                count, lines = diff_session(ref / name, Path(new) / name, name, excerpt)
            files += count
            report += lines
            failed += sum(1 for line in lines if line.startswith("golden: DIFFERENT"))
        for line in report:
            print(line)
        if failed:
            print(f"golden: {failed} of {files} files differ in {len(names)} sessions")
            return 1
        print(f"golden: {len(names)} sessions, {files} files identical")
        return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cap = commands.add_parser("capture", help="run the golden sessions, write DIR/<session>/")
    cap.add_argument("--src", type=Path, required=True, help="checkout to run (PYTHONPATH)")
    cap.add_argument("--out", type=Path, required=True)
    cmp = commands.add_parser("compare", help="capture and diff against the reference")
    cmp.add_argument("--src", type=Path, required=True)
    cmp.add_argument("--ref", type=Path, default=DEFAULT_REF)
    for sub in (cap, cmp):
        sub.add_argument("--only", action="append", default=[], help="run only this session")
        sub.add_argument("--jobs", type=int, default=2, help="sessions at a time (default 2)")
    args = parser.parse_args(argv)
    run: Callable[[], int]
    if args.command == "capture":
        run = lambda: capture(args.src, args.out, args.only, args.jobs)  # noqa: E731
    else:
        run = lambda: compare(args.src, args.ref, args.only, args.jobs)  # noqa: E731
    return run()


if __name__ == "__main__":
    sys.exit(main())
