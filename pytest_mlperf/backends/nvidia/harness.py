"""Facts about a harness checkout: its quick-run flag, run arguments, and where results land."""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlperf import jsonstrict
from pytest_mlperf.results.loadgen import DETAIL, ParsedLog

if TYPE_CHECKING:
    from pytest_mlperf.backends.nvidia.container import HarnessContainer

UNKNOWN_SYSTEM = "Detected system did not match any known systems"
#: code/main.py: a system × scenario without a config is warned about, and the run exits 0
NO_CONFIG = "No registered config"
_ROUND = re.compile(r"inference_results_v(\d+)\.(\d+)")
_MODES = {"performance": "PerformanceOnly", "accuracy": "AccuracyOnly"}
#: the harness's own TensorRT check, run in its container: Makefile:218 (``make
#: print_info``) detects it with ``python -c "import tensorrt; print(tensorrt.__version__)"``,
#: and code/common/harness.py:367 writes ``trt.__version__`` into metadata.json
TENSORRT_PROBE = ("python3", "-c", "import tensorrt; print(tensorrt.__version__)")
_TRT_VERSION = re.compile(r"^\d+(\.\d+)+\S*$")


def tensorrt_info(container: HarnessContainer) -> dict[str, str]:
    """``{"tensorrt_version": ...}`` as the container's Python reports it; empty when the
    image has no TensorRT."""
    probe = container.exec(list(TENSORRT_PROBE), timeout=120)
    version = tensorrt_version(probe.exit_code, probe.tail)
    return {} if version is None else {"tensorrt_version": version}


def tensorrt_version(exit_code: int | None, lines: list[str]) -> str | None:
    """The version :data:`TENSORRT_PROBE` printed (its last line), or None: no TensorRT
    in the container (``ModuleNotFoundError``, exit 1) or no version-like answer."""
    answer = [line.strip() for line in lines if line.strip()]
    if exit_code != 0 or not answer or not _TRT_VERSION.match(answer[-1]):
        return None
    return answer[-1]


@dataclass(frozen=True)
class QuickFlag:
    """The harness's shortened-run flag and how it was determined."""

    flag: str
    reason: str


def detect_quick_flag(harness_dir: Path) -> QuickFlag:
    """``--test_run`` for v4.1 and later, ``--fast`` before (v4.1 silently ignores ``--fast``)."""
    arguments = harness_dir / "code" / "common" / "arguments.py"
    if arguments.is_file():
        text = arguments.read_text(encoding="utf-8", errors="replace")
        if "test_run" in text:
            return QuickFlag("--test_run", f"{arguments} defines test_run")
        if re.search(r"[\"']fast[\"']", text):
            return QuickFlag("--fast", f"{arguments} defines fast but not test_run")
    match = _ROUND.search(str(harness_dir.resolve()))
    if match:
        version = (int(match.group(1)), int(match.group(2)))
        flag = "--test_run" if version >= (4, 1) else "--fast"
        return QuickFlag(flag, f"round v{version[0]}.{version[1]} from the checkout path")
    return QuickFlag("--test_run", "round unknown: assuming v4.1 or later")


def harness_commit(harness_dir: Path) -> str:
    """The git commit of the checkout, or a hash of its Makefile when it is not a git tree."""
    try:
        done = subprocess.run(
            ["git", "-C", str(harness_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    import hashlib

    makefile = harness_dir / "Makefile"
    data = makefile.read_bytes() if makefile.is_file() else b""
    return "nogit-" + hashlib.sha256(data).hexdigest()[:16]


def engine_inputs(harness_dir: Path) -> str:
    """A hash of uncommitted changes to what shapes an engine (``configs/``, ``code/``), or
    ``clean``: an edited config is another engine even at the same commit."""
    try:
        done = subprocess.run(
            ["git", "-C", str(harness_dir), "diff", "HEAD", "--", "configs", "code"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if done.returncode != 0:
        return "unknown"
    if not done.stdout:
        return "clean"
    import hashlib

    return "diff-" + hashlib.sha256(done.stdout).hexdigest()[:16]


def run_args(family: str, scenario: str, mode: str, config_ver: str, quick: str | None) -> str:
    """The RUN_ARGS value for one item (one benchmark, one scenario, one mode)."""
    parts = [
        f"--benchmarks={family}",
        f"--scenarios={scenario}",
        f"--config_ver={config_ver}",
        f"--test_mode={_MODES[mode]}",
    ]
    if quick:
        parts.append(quick)
    return " ".join(parts)


def find_result_dir(log_dir: Path, benchmark: str, scenario: str) -> Path | None:
    """``<LOG_DIR>/<system>/<benchmark>/<Scenario>/`` holding LoadGen logs or metadata.json."""
    candidates = [p.parent for name in (DETAIL, "metadata.json") for p in log_dir.rglob(name)]
    exact = [d for d in candidates if d.name == scenario and d.parent.name == benchmark]
    chosen = exact or [d for d in candidates if d.name == scenario]
    return sorted(set(chosen))[0] if chosen else None


def read_metadata(result_dir: Path) -> dict[str, Any] | None:
    """The harness's metadata.json, or None when absent or unreadable."""
    path = result_dir / "metadata.json"
    try:
        data = jsonstrict.load_file(path)  # deep nesting or NaN: unreadable, no traceback
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _figure(value: Any) -> float | None:
    """``value`` as a finite number, or None (text, a bool, null, NaN: not a figure)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def compare_metadata(metadata: Mapping[str, Any], parsed: ParsedLog, quick: bool) -> list[str]:
    """Where metadata.json and the LoadGen logs disagree, each side named."""
    notes = []
    # v4.1 copies LoadGen's result_validity into metadata.json; only its summary_string says
    # INVALID for a run under 600 s (code/actionhandler/run_harness.py, _get_result_string)
    meta_validity = metadata.get("result_validity")
    if meta_validity is not None and meta_validity != parsed.result_validity:
        notes.append(
            f"result_validity: metadata.json {meta_validity!r}, LoadGen log {parsed.result_validity!r}"
        )
    summary = metadata.get("summary_string")
    if (
        quick
        and isinstance(summary, str)
        and "INVALID" in summary
        and parsed.result_validity == "VALID"
    ):
        notes.append(
            "metadata.json's summary_string says INVALID (the harness applies the 10-minute rule "
            "to test runs); LoadGen's result_validity is VALID"
        )
    key = metadata.get("scenario_key")
    if isinstance(key, str) and key in metadata:
        logged = parsed.loadgen.get(key)
        in_log, in_meta = _figure(logged), _figure(metadata[key])
        if logged is not None and (in_meta is None or in_log is None or in_meta != in_log):
            said = "" if in_meta is not None else " (not a number)"
            notes.append(f"{key}: metadata.json {metadata[key]!r}{said}, LoadGen log {logged}")
    for key in ("scenario", "test_mode"):
        if key in metadata:
            ours = (
                parsed.scenario if key == "scenario" else (parsed.mode and _MODES.get(parsed.mode))
            )
            if ours is not None and str(metadata[key]).replace(" ", "") != ours:
                notes.append(f"{key}: metadata.json {metadata[key]!r}, LoadGen log {ours!r}")
    return notes
