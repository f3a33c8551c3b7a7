"""One ``Check`` for every gate, and the one function that turns checks into an outcome.

Every gate returns checks: LoadGen validity, thresholds, the baseline, accuracy, the
harness cross-check, submission rules, compliance, host requirements and the doctor's
lines. :func:`decide` is the only place an item's outcome is set; :func:`reason_line` the
only place a reason line is formatted. A leaf: it imports nothing from the package.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

OK, WARN, SKIP, FAIL = "ok", "warn", "skip", "fail"
STATUSES = (OK, WARN, SKIP, FAIL)
#: A status as the tables write it (the doctor's ``verdict`` column, a check's result).
STATUS_WORDS = {OK: "ok", WARN: "warn", SKIP: "skip", FAIL: "FAIL"}


class Outcome(str, enum.Enum):
    """An item's outcome, as results.schema.json spells it (``verdict.outcome``)."""

    PASSED = "passed"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    FAILED = "failed"
    ERROR = "error"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


#: Which outcome wins when checks disagree (later is worse).
_RANK = tuple(Outcome)


def ok_if(condition: bool) -> str:
    """``ok`` when ``condition`` holds, else ``fail``."""
    return OK if condition else FAIL


@dataclass(frozen=True)
class Check:
    """One check: its status, what was found (``value``), what was expected, the fix.

    ``gives`` is the outcome a failed check gives its item (None: ``failed``; else the run
    errored, was interrupted, or cannot be scored: ``xfailed``), and the outcome a skipped
    check gives a still-passing item (None: none, the gate only says it did not judge;
    ``skipped``: a gate that was not evaluated is not a pass); ``reason`` replaces
    :func:`reason_line`'s default text; ``listed`` is False for a check that is not a line
    of the verdict table (a run the system cannot do is skipped with no table).
    """

    name: str
    value: str = ""
    expected: str = ""
    status: str = OK
    detail: str = ""
    fix: str = ""
    gives: Outcome | None = None
    reason: str = ""
    listed: bool = True

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check {self.name}: status {self.status!r} is not one of {STATUSES}")

    @property
    def passed(self) -> bool:
        """Not failed (a warning or a skipped check does not fail)."""
        return self.status != FAIL

    @property
    def ok(self) -> bool:
        """Met: neither failed nor only a warning."""
        return self.status == OK

    @property
    def skipped(self) -> bool:
        """Not evaluated."""
        return self.status == SKIP

    # -- JSON forms: byte-compatible with the records written before there was one Check --
    def to_dict(self) -> dict[str, Any]:
        """A line of a record's ``verdict.checks``."""
        return {
            "name": self.name,
            "value": self.value,
            "bound": self.expected,
            "passed": self.passed,
            "detail": self.detail,
            "skipped": self.skipped,
        }

    def requirement_dict(self) -> dict[str, Any]:
        """A host requirement (the host record's ``checks``)."""
        return {"name": self.name, "ok": self.ok, "found": self.value, "fix": self.fix}

    def doctor_dict(self) -> dict[str, Any]:
        """A line of ``pytest-mlperf doctor --json``."""
        return {
            "check": self.name,
            "verdict": STATUS_WORDS[self.status],
            "found": self.value,
            "fix": self.fix,
        }

    def rule_dict(self) -> dict[str, Any]:
        """A submission rule (a record's ``submission.rules``)."""
        return {
            "rule": self.name,
            "passed": self.passed,
            "value": self.value,
            "bound": self.expected,
            "suggestion": self.fix,
        }


def reason_line(check: Check) -> str:
    """The one-line reason a failed (or, for a passing item, skipped) check gives."""
    if check.reason:
        return check.reason
    return f"{check.name}: {check.value} (expected {check.expected}) {check.detail}".strip()


@dataclass
class Verdict:
    """The outcome of an item and the checks that decided it (made by :func:`decide`)."""

    outcome: Outcome
    checks: list[Check] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when nothing failed."""
        return self.outcome == Outcome.PASSED

    def to_dict(self) -> dict[str, Any]:
        """A record's ``verdict``."""
        return {
            "outcome": str(self.outcome),
            "reasons": list(self.reasons),
            "checks": [c.to_dict() for c in self.checks if c.listed],
        }


def decide(checks: Iterable[Check], prior: Verdict | None = None) -> Verdict:
    """The item's outcome from its checks, in order (after ``prior``'s, when given).

    Each failed check adds its reason line and makes the outcome at least what it
    ``gives`` (``failed`` by default); a skipped check that ``gives`` an outcome gives it to
    a still-passing item, with its reason. Warnings change nothing.
    """
    outcome = prior.outcome if prior else Outcome.PASSED
    reasons = list(prior.reasons) if prior else []
    done = list(prior.checks) if prior else []
    for check in checks:
        done.append(check)
        if check.status == FAIL:
            reasons.append(reason_line(check))
            gives = check.gives or Outcome.FAILED
            if _RANK.index(gives) > _RANK.index(outcome):
                outcome = gives
        elif check.status == SKIP and check.gives and outcome == Outcome.PASSED:
            outcome = check.gives
            reasons.append(reason_line(check))
    return Verdict(outcome, done, reasons)


def verdict_from_dict(data: dict[str, Any]) -> Verdict:
    """A record's ``verdict`` back as a :class:`Verdict` (to add checks to it)."""
    checks = [
        Check(
            c["name"],
            c["value"],
            c["bound"],
            SKIP if c.get("skipped") else ok_if(bool(c["passed"])),
            c.get("detail", ""),
        )
        for c in data.get("checks", [])
    ]
    return Verdict(Outcome(data["outcome"]), checks, list(data.get("reasons", [])))
