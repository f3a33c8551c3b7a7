"""``--mlperf-backend=auto`` has one rule, asked through the ``pytest_mlperf_auto_backend``
hook on every path: the session's backend and the fleet's srun defaults (which follow the
backend the workers run) agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TINY_CONFTEST, RunMlperf

#: Says which backend auto is, and prints what the fleet made of it, then stops.
CONFTEST = """
import pytest

def pytest_mlperf_auto_backend(config):
    return {answer!r}

def pytest_cmdline_main(config):  # after pytest-mlperf's (tryfirst) made the --tx specs
    print("TX:", config.option.tx)
    return 0
"""


@pytest.mark.parametrize(
    ("answer", "harness", "exclusive"),
    [("nvidia", False, True), ("reference", True, False)],
)
def test_the_fleet_asks_the_auto_backend_hook(
    run_mlperf: RunMlperf,
    pytester: pytest.Pytester,
    tmp_path: Path,
    answer: str,
    harness: bool,
    exclusive: bool,
) -> None:
    """nvidia's workers get ``--exclusive`` by default, reference's do not; the hook decides
    what auto is (before, the fleet guessed nvidia from a harness dir alone)."""
    pytester.makeconftest(TINY_CONFTEST + CONFTEST.format(answer=answer))
    args = [f"--mlperf-harness-dir={tmp_path}"] if harness else []
    result = run_mlperf("--mlperf-benchmarks=tiny", "--mlperf-slurm-nodes=n1", *args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    (line,) = [x for x in result.stdout.lines if x.startswith("TX:")]
    assert "-w n1" in line
    assert ("--exclusive" in line) is exclusive
