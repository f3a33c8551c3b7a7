"""The CI recipes in docs/ci.md: valid YAML of the right shape, and commands that work.

Each recipe's commands are run as its CI system would (GitHub: each step's ``run`` in
``bash -e``; GitLab: ``script`` lines in one shell), except checkout and install, on the
reference backend with the tiny benchmark — twice: on the default branch (the history is
empty: inconclusive), then as a pull request judged against the default branch's history.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.builders import limit, write_thresholds
from tests.conftest import TINY_CONFTEST

CI_DOC = Path(__file__).parent.parent / "docs" / "ci.md"
_BLOCK = re.compile(r"```yaml\n# (?P<name>\S+)\n(?P<body>.*?)```", re.S)


def recipes() -> dict[str, Any]:
    """File name (first comment line) → parsed YAML, for every yaml block in docs/ci.md."""
    return {m["name"]: yaml.safe_load(m["body"]) for m in _BLOCK.finditer(CI_DOC.read_text())}


def test_both_recipes_are_there() -> None:
    assert set(recipes()) == {".github/workflows/mlperf.yml", ".gitlab-ci.yml"}


def _gate_command(commands: list[str]) -> str:
    gate = [c for c in commands if "--junitxml" in c]
    assert len(gate) == 1, commands
    return gate[0]


def _check_gate(command: str) -> None:
    assert "if [" not in command and "BASELINE" not in command  # no shell logic
    for option in (
        "--mlperf-benchmarks=",
        "--mlperf-thresholds=",
        '--mlperf-history="$MLPERF_HISTORY"',
        "--junitxml=junit.xml",
        "--html=report.html",
        "--self-contained-html",
    ):
        assert option in command, option


def _github_steps() -> list[dict[str, Any]]:
    return list(recipes()[".github/workflows/mlperf.yml"]["jobs"]["mlperf"]["steps"])


def test_github_recipe_structure() -> None:
    wf = recipes()[".github/workflows/mlperf.yml"]
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    job = wf["jobs"]["mlperf"]
    assert {"self-hosted", "gpu"} <= set(job["runs-on"])
    assert job["timeout-minutes"] >= 120  # a full run takes about an hour
    assert set(job["env"]) == {
        "MLPERF_BENCHMARKS",
        "MLPERF_BACKEND",
        "MLPERF_HISTORY",
        "MLPERF_EXTRA",
    }
    steps = job["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert all(("run" in s) != ("uses" in s) for s in steps)
    _check_gate(_gate_command([s["run"] for s in steps if "run" in s]))
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert set(upload["with"]["path"].split()) == {
        "junit.xml",
        "report.html",
        "mlperf-results/*/results.json",
    }


def test_gitlab_recipe_structure() -> None:
    ci = recipes()[".gitlab-ci.yml"]
    job = ci["mlperf"]
    assert job["stage"] in ci["stages"]
    assert "gpu" in job["tags"]
    assert all(isinstance(line, str) for line in job["script"])
    assert not any("if [" in line for line in job["script"])
    assert '--mlperf-history-compare="$CI_DEFAULT_BRANCH"' in _gate_command(job["script"])
    _check_gate(_gate_command(job["script"]))
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"]["junit"] == "junit.xml"
    assert set(artifacts["paths"]) == {"junit.xml", "report.html", "mlperf-results/*/results.json"}
    assert set(ci["variables"]) == {
        "MLPERF_BENCHMARKS",
        "MLPERF_BACKEND",
        "MLPERF_HISTORY",
        "MLPERF_EXTRA",
    }


def _scripts(recipe: str) -> list[str]:
    """The shell scripts a job runs, in order (checkout and install left out)."""
    if recipe == "github":
        return [s["run"] for s in _github_steps() if "run" in s and s.get("name") != "Install"]
    return ["\n".join(recipes()[".gitlab-ci.yml"]["mlperf"]["script"])]


@pytest.mark.parametrize("recipe", ["github", "gitlab"])
def test_recipe_commands_run_and_gate_on_their_history(
    recipe: str, pytester: pytest.Pytester, model_cache: Path
) -> None:
    pytester.makeconftest(TINY_CONFTEST)
    (pytester.path / "ci").mkdir()
    write_thresholds(
        pytester.path / "ci" / "mlperf-thresholds.json",
        limit("tiny-99", "Offline", min_samples_per_second=1),
        limit("tiny-99", "SingleStream", max_latency_ms=5000),
        system="reference-cpu",
    )
    history = pytester.path / "var" / "history.sqlite"
    # Offline only: a shortened SingleStream or Server run can turn INVALID on a loaded
    # machine, and the gate (rightly) fails then
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_"))},
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")]
        ),
        "MLPERF_BENCHMARKS": "tiny",
        "MLPERF_BACKEND": "reference",
        "MLPERF_HISTORY": str(history),
        "MLPERF_EXTRA": f"--mlperf-fast --mlperf-scenarios=Offline --mlperf-cache-dir={model_cache}",
        "CI_DEFAULT_BRANCH": "main",
    }
    # a push to main, then a pull/merge request from the branch "feature"
    pushes = {
        "github": [
            {"GITHUB_REF_NAME": "main"},
            {"GITHUB_HEAD_REF": "feature", "GITHUB_BASE_REF": "main"},
        ],
        "gitlab": [{"CI_COMMIT_REF_NAME": "main"}, {"CI_COMMIT_REF_NAME": "feature"}],
    }[recipe]
    for attempt, ci_env in enumerate(pushes, 1):
        for script in _scripts(recipe):
            done = subprocess.run(
                ["bash", "-e", "-c", script],
                cwd=pytester.path,
                env={**env, **ci_env},
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"run {attempt}:\n{script}\n{done.stdout}\n{done.stderr}"
        newest = sorted(pytester.path.glob("mlperf-results/*/results.json"))[-1]
        (item,) = json.loads(newest.read_text())["items"]
        assert f"inconclusive: history has {attempt - 1} of 5" in item["baseline"]["reason"]
        assert "(ref main," in item["baseline"]["reason"]  # a PR: the default branch's history
        assert "regressed" not in done.stdout
        props = {
            p.get("name"): p.get("value")
            for p in ET.parse(pytester.path / "junit.xml").getroot().iter("property")
        }
        assert props["mlperf/tiny-99/Offline/performance/verdict"] == "skipped"
        assert props["mlperf/tiny-99/Offline/performance/baseline_status"] == "inconclusive"
        report = pytester.path / "report.html"
        assert "MLPerf results" in report.read_text()
        assert not (pytester.path / "assets").exists()  # self-contained: one file to upload
        assert list(pytester.path.glob("mlperf-results/*/results.json"))
    refs = sqlite3.connect(history).execute(
        "SELECT ref, good FROM mlperf_history_sessions ORDER BY added_at"
    )
    assert sorted(refs.fetchall()) == [("feature", 1), ("main", 1)]


# -- a missing service skips locally and fails in CI (issue 26 point 11) ---------------------
NEEDS_SERVICES = """
from tests.conftest import requires_service

def test_needs_docker():
    requires_service("docker", "no Docker engine reachable (planted)")

def test_needs_chromium():
    requires_service("chromium", "chromium/chromedriver not found (planted)")
"""


@pytest.mark.parametrize("ci", [None, "true"])
def test_a_missing_service_skips_locally_and_fails_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_services=NEEDS_SERVICES)
    result = pytester.runpytest("-rsf", "-p", "no:cacheprovider")
    if ci is None:
        result.assert_outcomes(skipped=2)
        result.stdout.fnmatch_lines(["*docker missing: no Docker engine reachable (planted)*"])
        assert result.ret == pytest.ExitCode.OK
    else:
        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(
            ["*docker is required in CI (CI=true) but missing: no Docker engine reachable*"]
        )
        assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_ci_scripts_fail_in_ci_when_their_service_cannot_start(tmp_path: Path) -> None:
    """`.ci/run` runs with CI=true and `set -e`: a start script that cannot start its
    service must exit non-zero there (locally it says so and exits 0)."""
    script = Path(__file__).resolve().parents[1] / ".ci" / "start-docker"
    # no dockerd on PATH and not allowed to install: the engine cannot start
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "DOCKER_HOST": "unix:///nonexistent.sock"}
    bash = "/bin/bash"
    (tmp_path / "python3").symlink_to(os.path.realpath(sys.executable))
    for ci, code in ((None, 0), ("true", 1)):
        run_env = {**env, **({"CI": ci} if ci else {})}
        done = subprocess.run(
            [bash, str(script)], env=run_env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == code, (ci, done.stdout, done.stderr)
    run = (script.parent / "run").read_text()
    assert 'export CI="${CI:-true}"' in run and "set -euo pipefail" in run
