"""One Check for every gate; decide() is the one place an outcome is set."""

from __future__ import annotations

import pytest

from pytest_mlperf.checks import (
    FAIL,
    OK,
    SKIP,
    WARN,
    Check,
    Outcome,
    decide,
    reason_line,
    verdict_from_dict,
)


def test_failed_checks_decide_the_outcome_and_give_one_reason_each() -> None:
    verdict = decide(
        [
            Check("validity", "VALID", "VALID", OK),
            Check("threshold", "9 ms", "<= 5 ms", FAIL, "from t.json"),
            Check("submission:seeds", "x", "y", WARN),
        ]
    )
    assert verdict.outcome == Outcome.FAILED
    assert verdict.to_dict()["outcome"] == "failed"
    assert verdict.reasons == ["threshold: 9 ms (expected <= 5 ms) from t.json"]
    assert [c["passed"] for c in verdict.to_dict()["checks"]] == [True, False, True]


def test_the_worst_outcome_wins_and_a_skip_only_downgrades_a_pass() -> None:
    skip = Check("baseline", "not compared", "-", SKIP, "why", gives=Outcome.SKIPPED)
    assert decide([skip]).outcome == Outcome.SKIPPED
    assert decide([skip]).reasons == [reason_line(skip)]
    failed = Check("x", "1", "2", FAIL)
    assert decide([failed, skip]).reasons == [reason_line(failed)]
    assert decide([skip, failed]).outcome == Outcome.FAILED
    error = Check("run", "error", "a result", FAIL, "boom", gives=Outcome.ERROR, reason="boom")
    assert decide([error, failed]).outcome == Outcome.ERROR
    assert decide([error]).reasons == ["boom"]
    unjudged = Check("TEST01:performance", "-", "-", SKIP)  # says it did not judge, no more
    assert decide([unjudged]).outcome == Outcome.PASSED


def test_a_decision_continues_from_a_record() -> None:
    first = decide([Check("validity", "VALID", "VALID", OK)]).to_dict()
    again = decide([Check("fleet", "n1", "within", FAIL, "far")], verdict_from_dict(first))
    assert again.to_dict()["checks"][0] == first["checks"][0]
    assert again.outcome == Outcome.FAILED and len(again.checks) == 2


def test_each_gate_s_json_form_of_one_check_is_kept() -> None:
    req = Check("docker", "no engine", status=FAIL, fix="start it")
    assert req.requirement_dict() == {
        "name": "docker",
        "ok": False,
        "found": "no engine",
        "fix": "start it",
    }
    line = Check("disk", "1 GB free", status=FAIL, fix="free space")
    assert line.doctor_dict() == {
        "check": "disk",
        "verdict": "FAIL",
        "found": "1 GB free",
        "fix": "free space",
    }
    assert Check("proxy", "none", status=WARN).doctor_dict()["verdict"] == "warn"
    rule = Check("min_duration", "600000", ">= 600000 ms", OK)
    assert rule.rule_dict() == {
        "rule": "min_duration",
        "passed": True,
        "value": "600000",
        "bound": ">= 600000 ms",
        "suggestion": "",
    }


def test_a_status_outside_the_four_is_refused() -> None:
    with pytest.raises(ValueError, match="status 'FAIL' is not one of"):
        Check("disk", "1 GB free", status="FAIL")
