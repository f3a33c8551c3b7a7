"""The project's submission rules against the official checker, on every published result.

``tests/data/submission_checker_v4.1.json`` holds what the MLCommons submission checker
(c7db1c3f, the one v4.1 submitters ran) said when run on the shared data: per result, whether
it was accepted and which rules it logged as failed, for the published files and for a copy
with every ``sample_concatenate_permutation`` line removed from the measurement files (the
file says how it was run). Here the project's rules run on the same inputs and must say the
same, rule by rule and result by result.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.catalog import default_dirs, load_catalog
from pytest_mlperf.checks import SKIP
from pytest_mlperf.results.loadgen import parse_dir
from pytest_mlperf.submission import (
    check_accuracy_dir,
    check_item,
    load_rules,
    submission_record,
)
from tests.conftest import DATA
from tests.shared_data import RESULTS_V41, SHARED_DATA, require_shared

RULES = load_rules()
CHECKER = json.loads((DATA / "submission_checker_v4.1.json").read_text())
PUBLISHED: dict[str, dict[str, Any]] = CHECKER["runs"]["published"]
NO_CONF: dict[str, dict[str, Any]] = CHECKER["runs"]["no_equal_issue_conf"]
CATALOG = load_catalog(default_dirs())
METRIC = {"bert": "F1", "3d-unet": "DICE"}


def _measurement_dir(result: str) -> Path:
    division, submitter, _results, system, model, scenario = result.split("/")
    return RESULTS_V41 / division / submitter / "measurements" / system / model / scenario


def project_failed(result: str, measurements: Path | None = None) -> set[str]:
    """The rules the project says this published result fails (performance + accuracy)."""
    division, _sub, _res, _sys, model, _scen = result.split("/")
    root = RESULTS_V41 / result
    perf = parse_dir(root / "performance" / "run_1")
    assert perf.scenario is not None
    results = check_item(
        RULES,
        model,
        perf.scenario,
        "performance",
        perf.loadgen,
        perf.errors,
        perf.result_validity,
        division=division,
        measurement_dir=measurements or _measurement_dir(result),
    )
    acc = parse_dir(root / "accuracy")
    results += check_item(RULES, model, perf.scenario, "accuracy", acc.loadgen, acc.errors)
    family = model.split("-99")[0]
    results += check_accuracy_dir(
        RULES,
        root / "accuracy",
        root / "accuracy" / "mlperf_log_accuracy.json",
        METRIC[family],
        CATALOG.variant(model).target,
    )
    assert not [r for r in results if r.status == SKIP]  # the measurement files are there
    return {r.name for r in results if not r.passed}


def _agreement(
    run: dict[str, dict[str, Any]], failed: Callable[[str], set[str]]
) -> list[tuple[str, set[str], set[str]]]:
    said = {k: failed(k) for k in run}
    return [(k, said[k], set(v["failed"])) for k, v in run.items() if said[k] != set(v["failed"])]


def test_every_published_result_as_the_checker_judged_it() -> None:
    require_shared(RESULTS_V41)
    assert len(PUBLISHED) == 213  # every bert/3d-unet result in the shared data
    disagree = _agreement(PUBLISHED, project_failed)
    assert disagree == [], disagree
    # the checker accepted every one; the one rule it logged failed was an open result's
    # accuracy (open results are accepted below target), and the project says the same
    assert all(v["accepted"] for v in PUBLISHED.values())
    [(below, verdict)] = [(k, v) for k, v in PUBLISHED.items() if v["failed"]]
    assert below.startswith("open/") and verdict["failed"] == ["accuracy_target"]


def test_closed_results_are_ready_exactly_when_the_checker_accepts_them() -> None:
    require_shared(RESULTS_V41)
    closed = [k for k in PUBLISHED if k.startswith("closed/")]
    assert len(closed) == 207
    equal_issue = [k for k in closed if "/3d-unet-" in k]
    assert len(equal_issue) == 71
    for result in closed:
        assert (not project_failed(result)) is PUBLISHED[result]["accepted"], result


def test_without_the_conf_lines_3d_unet_closed_fails_as_the_checker_says(tmp_path: Path) -> None:
    """The checker's run with the conf lines removed rejected all 71 closed 3d-unet results,
    the two whose log says true among them (it compares the logged value with the string
    "true"; a JSON log holds a boolean). The project, on the same stripped files, agrees."""
    require_shared(RESULTS_V41)
    rejected = {k for k, v in NO_CONF.items() if not v["accepted"]}
    assert len(rejected) == 71 and all(
        k.startswith("closed/") and "/3d-unet-" in k for k in rejected
    )
    logged_true = []

    def stripped(result: str) -> set[str]:
        src = _measurement_dir(result)
        dest = tmp_path / result
        shutil.copytree(src, dest, dirs_exist_ok=True)
        for name in ("mlperf.conf", "user.conf"):
            conf = dest / name
            if conf.is_file():
                kept = [
                    line
                    for line in conf.read_text().splitlines(True)
                    if "sample_concatenate_permutation" not in line
                ]
                conf.write_text("".join(kept))
        perf = parse_dir(RESULTS_V41 / result / "performance" / "run_1")
        if perf.loadgen.get("effective_sample_concatenate_permutation") is True:
            logged_true.append(result)
        return project_failed(result, dest)

    disagree = _agreement(NO_CONF, stripped)
    assert disagree == [], disagree
    assert len(logged_true) == 2 and set(logged_true) <= rejected


def test_equal_issue_from_the_measurement_files(tmp_path: Path) -> None:
    """What check_measurement_dir reads: the model without -99/-99.9 or *, the scenario or
    *, and user.conf over mlperf.conf; without the files and the log saying, unknown."""
    log = {"effective_sample_concatenate_permutation": False}

    def rule(conf: dict[str, str] | None, model: str = "3d-unet-99.9", **kw: Any) -> Any:
        d = None
        if conf is not None:
            d = tmp_path / str(len(list(tmp_path.iterdir())))
            d.mkdir()
            for name, text in conf.items():
                (d / name).write_text(text)
        results = check_item(
            RULES,
            model,
            "Offline",
            "performance",
            kw.get("log", log),
            [],
            measurement_dir=d,
            division=kw.get("division", "closed"),
        )
        return next((r for r in results if r.name == "equal_issue"), None)

    assert rule({"mlperf.conf": "3d-unet.*.sample_concatenate_permutation = 1\n"}).ok
    assert rule({"user.conf": "*.Offline.sample_concatenate_permutation=1"}).ok
    assert not rule({"user.conf": "3d-unet.Server.sample_concatenate_permutation = 1"}).passed
    assert not rule({"user.conf": "3d-unet-99.9.*.sample_concatenate_permutation = 1"}).passed
    off = rule(
        {
            "mlperf.conf": "# x\n\n3d-unet.*.sample_concatenate_permutation = 1\n",
            "user.conf": "3d-unet.Offline.sample_concatenate_permutation = 0\n",
        }
    )
    assert not off.passed and "not set" in off.value
    assert off.fix == "3d-unet.Offline.sample_concatenate_permutation = 1 in user.conf"
    # no measurement files: a log saying true is met; false or silent is unknown, not failed
    assert rule(None, log={"effective_sample_concatenate_permutation": True}).ok
    for said in ({}, log):
        unknown = rule(None, log=said)
        assert unknown.skipped and unknown.passed and unknown.value.startswith("unknown:")
        record = submission_record([unknown], "fail")
        assert record["ready"] is False and record["unknown"] == ["equal_issue"]
    # open division: not a rule there (the checker's requires_equal_issue)
    assert rule(None, division="open") is None
    assert rule(None, model="bert-99") is None


def test_no_copy_of_the_shared_data_in_the_project() -> None:
    """tests/data keeps no published file: each is compared with every shared file."""
    shared = require_shared(SHARED_DATA)
    by_size: dict[int, list[Path]] = {}
    for path in shared.rglob("*"):
        if path.is_file():
            by_size.setdefault(path.stat().st_size, []).append(path)
    copies = [
        str(ours)
        for ours in DATA.rglob("*")
        if ours.is_file()
        and any(ours.read_bytes() == p.read_bytes() for p in by_size.get(ours.stat().st_size, []))
    ]
    assert copies == []


@pytest.mark.parametrize("model", ["3d-unet-99", "bert-99"])
def test_a_live_run_without_measurement_files(model: str) -> None:
    """The plugin's own items have no measurement directory: the log decides or it is unknown."""
    results = check_item(RULES, model, "Offline", "performance", {}, [])
    rules = {r.name: r for r in results}
    if model.startswith("3d-unet"):
        assert rules["equal_issue"].skipped
    else:
        assert "equal_issue" not in rules
