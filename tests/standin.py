"""The stand-in NVIDIA harness: a busybox image whose `make` behaves like the real one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

STANDIN = Path(__file__).parent / "standin"
APPLETS = (
    "sh",
    "cat",
    "cp",
    "mkdir",
    "sed",
    "grep",
    "head",
    "sleep",
    "tail",
    "test",
    "touch",
    "echo",
    "kill",
    "setsid",
    "dirname",
    "ls",
    "rm",
    "true",
    "env",
    "ps",
    "wc",
    "ln",
    "tee",
    "date",
    "printf",
    "find",
    "stat",
)


def fill_rootfs(rootfs: Path, standin: Path, busybox: Path) -> None:
    """The stand-in image's files: busybox with its applets, and the stand-in's scripts
    (from ``standin``, a checkout's tests/standin/) as make, python3, nvidia-smi, lscpu."""
    for sub in ("bin", "usr/bin", "tmp"):
        (rootfs / sub).mkdir(parents=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    for script, names in (
        ("make.sh", ("make",)),
        ("python3.sh", ("python3",)),
        ("hw.sh", ("nvidia-smi", "lscpu")),
    ):
        for name in names:
            shutil.copy2(standin / script, rootfs / "usr" / "bin" / name)
            (rootfs / "usr" / "bin" / name).chmod(0o755)


def static_busybox() -> Path:
    """A statically linked busybox (Debian's busybox-static), or skip."""
    found = shutil.which("busybox")
    if found is None:
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    probe = subprocess.run(["ldd", found], capture_output=True, text=True, check=False)
    if "not a dynamic executable" not in (probe.stdout + probe.stderr):
        pytest.skip(f"{found} is dynamically linked; install busybox-static")
    return Path(found)


#: Label on every stand-in image; its value is the test session's base temp dir.
SESSION_LABEL = "pytest-mlperf.test-session"


def make_harness(
    root: Path, logs: Path, version: str = "4.1", mode: str = "ok", **conf: str
) -> Path:
    """Copy the stand-in harness to ``root/harness`` with its image rootfs and logs.

    The image is labelled with this test session (so teardown removes only its own images,
    even when other sessions share the engine) and with the harness copy (so each copy gets
    its own image and "built" versus "reused" is deterministic).
    """
    harness = root / "harness"
    shutil.copytree(STANDIN / "harness", harness)
    dockerfile = harness / "docker" / "Dockerfile.x86_64"
    dockerfile.write_text(
        dockerfile.read_text()
        + f'LABEL {SESSION_LABEL}="{session_tag(root)}" pytest-mlperf.harness="{harness}"\n'
    )
    fill_rootfs(harness / "docker" / "rootfs", STANDIN, static_busybox())
    shutil.copytree(logs, harness / "standin-logs")
    if version == "4.0":
        (harness / "code" / "common" / "arguments.py").write_text('arguments = {"fast": {}}\n')
    set_conf(harness, version=version, mode=mode, **conf)
    _git_checkout(harness)
    return harness


#: The tests' own control files in a stand-in checkout (not harness state): git ignores them.
CONTROL_FILES = ("standin.conf", "standin-calls.log", "standin-logs/", "docker/rootfs/")


def _git_checkout(harness: Path) -> None:
    """Make the copy a git checkout (one commit), as a user's clone of the harness is."""

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(harness), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    (harness / ".git" / "info" / "exclude").write_text("\n".join(CONTROL_FILES) + "\n")
    git("add", "-A")
    git("commit", "-q", "-m", "stand-in harness")


def git_status(harness: Path) -> list[str]:
    """``git status --porcelain`` of a stand-in checkout: what a session left in it."""
    done = subprocess.run(
        ["git", "-C", str(harness), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def session_tag(path: Path) -> str:
    """The pytest base temp dir ``path`` lies in (``.../pytest-N``, or a pytest-xdist
    worker's ``.../pytest-N/popen-gwK``, so one worker's teardown never removes another
    worker's images), or ``path`` itself."""
    for parent in (path, *path.parents):
        if parent.name.startswith("popen-gw") or (
            parent.name.startswith("pytest-") and parent.name[7:].isdigit()
        ):
            return str(parent)
    return str(path)


def set_conf(harness: Path, version: str = "4.1", mode: str = "ok", **conf: str) -> None:
    """Tell the stand-in how to behave on its next call."""
    import shlex

    lines = [
        f"VERSION={version}",
        f"MODE={mode}",
        *(f"{k.upper()}={shlex.quote(v)}" for k, v in conf.items()),
    ]
    (harness / "standin.conf").write_text("\n".join(lines) + "\n")


def calls(harness: Path) -> list[str]:
    """The make targets and harness actions the stand-in has run, in order."""
    log = harness / "standin-calls.log"
    return [line.strip() for line in log.read_text().splitlines()] if log.exists() else []


def standin_args(pytester: pytest.Pytester, harness: Path) -> list[str]:
    """Options that run bert on the nvidia backend with the stand-in ``harness``, no GPUs,
    and a fresh scratch path in the pytester directory."""
    scratch = pytester.mkdir("scratch")
    return [
        "--mlperf-backend=nvidia",
        f"--mlperf-harness-dir={harness}",
        f"--mlperf-scratch-path={scratch}",
        "--mlperf-devices=none",
        "--mlperf-benchmarks=bert",
    ]
