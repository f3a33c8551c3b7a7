"""One step down for a Server target the plugin chose and LoadGen found too high.

The Server search probes short runs; the timed run is longer and sometimes still misses
the latency bound or early stopping at the searched target (on a busy machine, or near
the edge). Such an INVALID is the plugin's choice failing, not the system: the item is
rerun once at a lower target. A target the user or a baseline pinned is never moved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pytest_mlperf.backends.base import Backend, Progress, RunOutcome, RunRequest
from pytest_mlperf.results.loadgen import SHORTENED_RUN_REASONS, ParsedLog, parse_dir

#: what a too-high Server target makes LoadGen say
TOO_HIGH = frozenset({"early_stopping_not_met", "perf_constraints_not_met"})
#: grid steps below the chosen target (the search's own step ratio, 0.93 by default)
STEPS_DOWN = 2
DEFAULT_STEP = 0.93


@dataclass(frozen=True)
class StepDown:
    """The rerun's target and why the first run's target was given up."""

    from_qps: float
    to_qps: float
    why: str

    def note(self, validity: str | None) -> str:
        """One line for the record's warnings and the terminal."""
        return (
            f"the Server target the plugin chose ({self.from_qps:g}/s) was INVALID "
            f"({self.why}): reran once at {self.to_qps:g}/s, {validity or 'no result'}"
        )

    def to_dict(self, first_log_dir: str, validity: str | None) -> dict[str, Any]:
        """The record's ``retarget``."""
        return {
            "from_qps": self.from_qps,
            "to_qps": self.to_qps,
            "why": self.why,
            "first_log_dir": first_log_dir,
            "validity": validity,
        }


def step_down(
    scenario: str,
    overrides: Mapping[str, float],
    calibration: Mapping[str, Any] | None,
    parsed: ParsedLog,
) -> StepDown | None:
    """The lower target to rerun at, or None: not Server, a pinned target (``overrides``),
    a target the plugin did not choose (no calibration), or not INVALID for a too-high target
    (other reasons than ``TOO_HIGH`` and a shortened run's)."""
    if scenario != "Server" or "target_qps" in overrides or not calibration:
        return None
    target = (calibration.get("targets") or {}).get("target_qps")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or target <= 0:
        return None
    if parsed.result_validity != "INVALID":
        return None
    codes = {r.code for r in parsed.invalid_reasons}
    if not codes & TOO_HIGH or codes - TOO_HIGH - SHORTENED_RUN_REASONS:
        return None
    step = ((calibration.get("search") or {}).get("settings") or {}).get("step", DEFAULT_STEP)
    if not isinstance(step, (int, float)) or not 0 < step < 1:
        step = DEFAULT_STEP
    lower = float(target) * step**STEPS_DOWN
    completed = parsed.metric_value
    if completed is not None and math.isfinite(completed) and 0 < completed * step < lower:
        lower = completed * step  # it did not even keep up: below what it completed
    why = "; ".join(r.message for r in parsed.invalid_reasons if r.code in TOO_HIGH)
    return StepDown(float(target), round(max(lower, 0.01), 2), why)


def rerun_lower(
    backend: Backend, req: RunRequest, first: RunOutcome, lower: StepDown, progress: Progress
) -> tuple[RunOutcome, ParsedLog, dict[str, float], dict[str, Any]]:
    """Rerun ``req`` at ``lower``'s target, in ``<outdir>/retarget``; returns the rerun (its
    time includes the first run's; it keeps the search's calibration), its logs (a warning
    says so), the overrides later runs keep, and the record's ``retarget``."""
    progress(
        f"{req.variant.name} Server: INVALID at the chosen target {lower.from_qps:g}/s "
        f"({lower.why}); rerunning once at {lower.to_qps:g}/s"
    )
    outdir = req.outdir / "retarget"
    outdir.mkdir(parents=True, exist_ok=True)
    overrides = {**req.overrides, "target_qps": lower.to_qps}
    run = backend.run(replace(req, outdir=outdir, overrides=overrides), progress)
    run.run_seconds += first.run_seconds
    if run.calibration is None:
        run.calibration = first.calibration
    parsed = parse_dir(run.log_dir)
    parsed.warnings.append(lower.note(parsed.result_validity))
    record = lower.to_dict(str(first.log_dir), parsed.result_validity)
    progress(f"{req.variant.name} Server: {lower.note(parsed.result_validity)}")
    return run, parsed, overrides, record
