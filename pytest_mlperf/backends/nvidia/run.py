"""One item's ``make run_harness``, step by step: what the backend refuses, the command,
the logs fetched out of the container, and the result found in them (or why none is)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_mlperf.backends.base import RunRequest
from pytest_mlperf.backends.nvidia.container import ExecResult, HarnessContainer
from pytest_mlperf.backends.nvidia.engines import EngineState
from pytest_mlperf.backends.nvidia.harness import (
    NO_CONFIG,
    UNKNOWN_SYSTEM,
    compare_metadata,
    find_result_dir,
)
from pytest_mlperf.errors import BackendError
from pytest_mlperf.results.loadgen import ParsedLog
from pytest_mlperf.results.store import atomic_write_text

#: What a container whose working-directory mount source was re-created says (exit 126).
MOUNT_GONE = "outside of container mount namespace"
TEST01_REFUSED = (
    "TEST01 is not supported on the nvidia backend: every v4.1 harness action deletes "
    "audit.config first (code/main.py, code/common/auditing.py), and its audits run through "
    "their own targets (run_audit_test01_once, logs under build/compliance_logs/TEST01); "
    "run --mlperf-compliance on the reference backend, or NVIDIA's `make run_audit_test01` "
    "inside the container"
)


def refuse_unsupported(request: RunRequest) -> None:
    """LoadGen overrides and compliance audits are not the harness's to run this way."""
    if request.overrides:
        raise BackendError(
            f"LoadGen overrides ({', '.join(request.overrides)}) are not supported by the nvidia "
            "backend; set them in the harness configs (benchmarks/systems/*.json)"
        )
    if request.compliance is not None or request.audit is not None:
        raise BackendError(TEST01_REFUSED)


def fetch_logs(container: HarnessContainer, inner: str, log_dir: Path) -> None:
    """The container's log directory copied to ``log_dir``, its ``stdout.txt`` masked."""
    container.fetch(inner, log_dir)
    # run_harness tees the harness's output into $(LOG_DIR)/stdout.txt (Makefile):
    # masked like every other copy of it
    for copy in log_dir.rglob("stdout.txt"):
        atomic_write_text(copy, copy.read_text(encoding="utf-8", errors="replace"))


def raise_for_exit(result: ExecResult, timeout: float, timeout_source: str) -> None:
    """A run that timed out or exited non-zero is a BackendError with its last output."""
    if result.timed_out:
        raise BackendError(
            f"harness run timed out after {timeout:g} s and was stopped (timeout from "
            f"{timeout_source}); last output:\n{result.tail_text(15)}"
        )
    if result.exit_code != 0:
        raise BackendError(
            f"harness run exited with code {result.exit_code}:\n{result.tail_text(15)}"
        )


def result_dir(log_dir: Path, request: RunRequest, result: ExecResult, state: EngineState) -> Path:
    """The item's LoadGen result under ``log_dir``, else why the harness wrote none."""
    found = find_result_dir(log_dir, request.variant.name, request.scenario)
    if found is not None:
        return found
    tail = result.tail_text(15)
    if any(NO_CONFIG in line for line in result.tail):
        raise BackendError(
            f"no result: the harness said {NO_CONFIG!r} at run_harness although the "
            f"engine was {state.action} for {state.system_id}:\n{tail}"
        )
    if any(UNKNOWN_SYSTEM in line for line in result.tail):
        raise BackendError(
            f"no result: the harness said {UNKNOWN_SYSTEM!r} and exited {result.exit_code} without "
            "writing one; add this machine to benchmarks/systems/ (GPU name and count) so pytest-mlperf "
            "generates a custom system, or use a harness that knows it"
        )
    raise BackendError(
        f"no result: the harness wrote no LoadGen logs or metadata.json under {log_dir}:\n{tail}"
    )


def metadata_check(metadata: dict[str, Any] | None, fast: bool) -> Callable[[ParsedLog], list[str]]:
    """The run's cross-check of the harness's metadata.json against the parsed log."""

    def compare(parsed: ParsedLog) -> list[str]:
        return (
            compare_metadata(metadata, parsed, fast)
            if metadata
            else ["no metadata.json from the harness"]
        )

    return compare
