"""Slurm: node lists, the srun --tx specs, usage errors, and a real 3-node cluster (n1-n3).

The cluster tests use the cluster `.ci/start-slurm` starts (munge, slurmctld and three
slurmd on this machine) and skip, with the reason, where it cannot run. The slow node is
planted deterministically: the conftest's backend sleeps 100 ms per query on node n2 (a
real node would be slow from a bad GPU); node n3 reports another driver version.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.errors import ConfigError
from pytest_mlperf.slurm import (
    default_srun_args,
    expand_nodelist,
    parse_fleet_settings,
    parse_srun_args,
    resolve_nodes,
    tx_specs,
)
from tests.builders import limit, write_thresholds
from tests.conftest import TINY_DIR, RunMlperf, load_results, requires_service

REPO = Path(__file__).resolve().parents[1]
NODES = ("n1", "n2", "n3")


# -- node lists and specs (no cluster needed) ---------------------------------------------
@pytest.mark.parametrize(
    ("text", "nodes"),
    [
        ("n[1-3]", ["n1", "n2", "n3"]),
        ("gpu[01-02],login", ["gpu01", "gpu02", "login"]),
        ("n[1,3-4]x", ["n1x", "n3x", "n4x"]),
        ("a,b,a", ["a", "b"]),
        ("dgx[008-010]", ["dgx008", "dgx009", "dgx010"]),
    ],
)
def test_expand_nodelist(text: str, nodes: list[str]) -> None:
    assert expand_nodelist(text) == nodes


@pytest.mark.parametrize("text", ["n[3-1]", "n[1-", "n]1[", "n[a-b]", "", " , ", "n 1"])
def test_bad_nodelist_names_the_value(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--mlperf-slurm-nodes: .*(valid|names no nodes|e\.g\.)"):
        expand_nodelist(text)


def test_auto_reads_the_allocation() -> None:
    assert resolve_nodes("auto", {"SLURM_JOB_NODELIST": "n[2-3]"}) == ["n2", "n3"]
    with pytest.raises(ConfigError, match="SLURM_JOB_NODELIST is not set"):
        resolve_nodes("auto", {})


def test_tx_specs_are_shell_quoted_for_execnet() -> None:
    python = "/opt/my venv/bin/python"
    specs = tx_specs(["n1", "gpu01"], python, ["--gres=gpu:8"])
    assert len(specs) == 2 and all(s.startswith("popen//python=") for s in specs)
    argv = shlex.split(specs[1].removeprefix("popen//python="))  # what execnet does
    assert argv == ["srun", "-N1", "-n1", "-w", "gpu01", "--gres=gpu:8", "--unbuffered", python]


def test_srun_args_defaults_and_errors() -> None:
    assert default_srun_args("reference", {}) == []
    assert default_srun_args("nvidia", {}) == ["--exclusive"]
    assert default_srun_args("nvidia", {"SLURM_GPUS_ON_NODE": "8"}) == [
        "--exclusive",
        "--gres=gpu:8",
    ]
    assert parse_srun_args("--gres=gpu:4 --cpus-per-task=16") == [
        "--gres=gpu:4",
        "--cpus-per-task=16",
    ]
    for bad, why in (
        ("rm -rf /", "is not an srun option"),
        ("--cpus-per-task 16", "'16' is not an srun option.*joined with '='"),
        ("-w n1", "is set per worker"),
        ("--nodelist=n1", "is set per worker"),
        ("'unclosed", "cannot split"),
        ("--chdir=a//b", "ends an xdist --tx spec"),
    ):
        with pytest.raises(ConfigError, match=why):
            parse_srun_args(bad)


def test_fleet_settings() -> None:
    values: dict[str, Any] = {"slurm_nodes": "n[1-2]", "fleet_mad_k": "2.5", "fleet_gate": True}
    settings = parse_fleet_settings(values.get, "nvidia", {})
    assert settings.nodes == ("n1", "n2") and settings.gate and settings.enabled
    assert settings.mad_k == 2.5 and settings.srun_args == ("--exclusive",)
    assert (
        settings.tx("python")[0]
        == "popen//python=srun -N1 -n1 -w n1 --exclusive --unbuffered python"
    )
    empty: dict[str, str | bool | None] = {}
    assert not parse_fleet_settings(empty.get, "reference", {}).enabled
    with pytest.raises(ConfigError, match=r"--mlperf-fleet-mad-k: 'nan' is not a number > 0"):
        parse_fleet_settings({"fleet_mad_k": "nan"}.get, "reference", {})
    with pytest.raises(ConfigError, match="needs --mlperf-slurm-nodes"):
        parse_fleet_settings({"slurm_args": "--exclusive"}.get, "reference", {})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--mlperf-slurm-nodes=n[3-1]"],
            "*--mlperf-slurm-nodes: cannot read the node list 'n?3-1?'*",
        ),
        (
            ["--mlperf-slurm-nodes=n1", "-n", "2"],
            "*makes one worker per node itself: drop -n/--tx*",
        ),
        (["--mlperf-slurm-nodes=n1", "--mlperf-slurm-args=-w n2"], "*'-w' is set per worker*"),
        (["--mlperf-fleet-mad-k=zero"], "*--mlperf-fleet-mad-k: 'zero' is not a number > 0*"),
    ],
)
def test_bad_fleet_options_are_usage_errors(
    run_mlperf: RunMlperf, args: list[str], message: str
) -> None:
    result = run_mlperf("--mlperf-benchmarks=tiny", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


# -- the real cluster -----------------------------------------------------------------------
def _sinfo() -> str:
    try:
        done = subprocess.run(
            ["sinfo", "-h", "-N", "-n", ",".join(NODES), "-o", "%N %t"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo failed: {exc}"
    return done.stdout + done.stderr


def _up(text: str) -> bool:
    lines = [line.split() for line in text.splitlines()]
    return sorted(n for n, state, *_ in lines if state in ("idle", "mix", "alloc")) == list(NODES)


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The n1-n3 cluster of `.ci/start-slurm` (started here when it is not up), or skip."""
    if shutil.which("sinfo") and _up(_sinfo()):
        return
    if os.geteuid() != 0:
        requires_service(
            "slurm", "Slurm n1-n3 is not running and only root can start it (.ci/start-slurm)"
        )
    done = subprocess.run(
        ["bash", str(REPO / ".ci" / "start-slurm")], capture_output=True, text=True, timeout=900
    )
    status = _sinfo() if shutil.which("sinfo") else "sinfo not installed"
    if not _up(status):
        requires_service(
            "slurm", f"Slurm n1-n3 could not start: {done.stdout.strip()} {status.strip()}"
        )


PLANTED = f"""
import os
import time
from pathlib import Path

import pytest

NODE = os.environ.get("SLURMD_NODENAME")


def pytest_mlperf_benchmark_dirs(config):
    return [Path({str(TINY_DIR)!r})]


@pytest.hookimpl(tryfirst=True)
def pytest_mlperf_make_backend(name, run_config, config):
    from pytest_mlperf.backends.reference import ReferenceBackend

    class Planted(ReferenceBackend):
        def describe(self):
            data = super().describe()
            data["driver_version"] = "535.104.05" if NODE == "n3" else "550.54.15"
            return data

        def _engine(self, bench, progress, precision=None):
            engine = super()._engine(bench, progress, precision)
            if NODE == "n2" and not getattr(engine, "planted", False):
                infer = engine.infer

                def slow(indices):
                    time.sleep(0.1)  # the planted slow node: 100 ms more per query
                    return infer(indices)

                engine.infer = slow
                engine.planted = True
            return engine

    return Planted(run_config.cache_dir, run_config.calibrate, run_config.threads)
"""

ITEM = "tiny-99[SingleStream-performance]"
GLOB = ITEM.replace("[", "?").replace("]", "?")  # fnmatch reads [...] as a character set


def _check_fleet_run(root: Path) -> dict[str, Any]:
    """What every fleet run must give: one record per node, tagged, logs on the controller."""
    data = load_results(root)
    run_dir = next((root / "mlperf-results").glob("*/results.json")).parent
    by_node = {i["node"]["name"]: i for i in data["items"]}
    assert sorted(by_node) == list(NODES), [i["node"] for i in data["items"]]
    job_ids = set()
    for node, record in by_node.items():
        tags = record["node"]
        assert tags["slurm_node"] == node and tags["slurm_job_id"] and tags["slurm_step_id"]
        job_ids.add(tags["slurm_job_id"])
        log_dir = Path(record["log_dir"])
        assert log_dir.is_relative_to(run_dir / "nodes" / node), log_dir
        summary = (log_dir / "mlperf_log_summary.txt").read_text()
        assert "Result is" in summary
        assert record["transfer"]["files"] >= 3 and record["transfer"]["left"] == []
        node_dir = Path(record["transfer"]["node_paths"]["item_dir"])
        assert not node_dir.is_relative_to(run_dir)  # written node-local, not shared
        assert not node_dir.exists()  # and removed from the node at its end
    assert len(job_ids) == 3  # each worker its own srun step (outside an allocation: job)
    assert sorted(data["nodes"]) == list(NODES)
    prepared = sorted(p["worker"].split("@")[1] for p in data["preparations"])
    assert prepared == list(NODES)
    fleet = data["fleet"]
    (item,) = fleet["items"]
    assert item["item"] == ITEM and item["better"] == "lower"
    assert [o["node"] for o in fleet["outliers"]] == ["n2"]
    (diff,) = [d for d in fleet["host_differences"] if d["fact"] == "driver_version"]
    assert diff["values"] == {"n1": "550.54.15", "n2": "550.54.15", "n3": "535.104.05"}
    return data


def test_three_nodes_dist_each_finds_the_planted_slow_node(
    slurm_cluster: None, run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    pytester.makeconftest(PLANTED)
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=SingleStream",
        "--mlperf-fast",
        "--mlperf-slurm-nodes=n[1-3]",
        "--mlperf-fleet-gate",
        "--junitxml=junit.xml",
        "--html=report.html",
        subprocess=True,
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*MLPerf fleet*",
            f"{GLOB}*n2*OUTLIER*",
            f"*fleet outlier: node n2 slower than the fleet on {GLOB}: *",
            "*host facts differ: driver_version: n*",
            f"FAILED mlperf::{GLOB}::fleet?n2? - fleet outlier*",
        ]
    )
    data = _check_fleet_run(pytester.path)
    verdicts = {i["node"]["name"]: i["verdict"] for i in data["items"]}
    assert verdicts["n2"]["outcome"] == "failed"
    assert verdicts["n2"]["checks"][-1]["name"] == "fleet"
    assert "slower than the fleet" in verdicts["n2"]["reasons"][-1]
    assert {verdicts[n]["outcome"] for n in ("n1", "n3")} == {"passed"}
    junit = (pytester.path / "junit.xml").read_text()
    assert junit.count(f'name="{ITEM}"') == 3 and "fleet[n2]" in junit
    assert 'name="mlperf_node" value="n2"' in junit
    html = (pytester.path / "report.html").read_text()
    assert 'id="mlperf-fleet"' in html and "mlperf-plot-fleet" in html
    assert html.count("nodes/n") >= 3  # log links point at the controller's copies


def test_plain_tx_form_reports_outliers_without_failing(
    slurm_cluster: None, run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    pytester.makeconftest(PLANTED)
    # a latency bound only the planted node misses: its own item fails on n2, and the
    # failure text names where its logs are on the controller, not on the node
    thresholds = write_thresholds(
        pytester.path / "thresholds.json",
        limit("tiny-99", "SingleStream", max_latency_ms=60),
        system="reference-cpu",
    )
    tx = []
    for node in NODES:
        tx += ["--tx", f"popen//python=srun -N1 -n1 -w {node} --unbuffered {sys.executable}"]
    result = run_mlperf(
        "--dist",
        "each",
        *tx,
        "--mlperf-fleet",
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=SingleStream",
        "--mlperf-fast",
        f"--mlperf-thresholds={thresholds}",
        subprocess=True,
    )
    result.assert_outcomes(passed=2, failed=1)  # no gate: the outlier is reported only
    result.stdout.fnmatch_lines([f"*fleet outlier: node n2 slower than the fleet on {GLOB}*"])
    data = _check_fleet_run(pytester.path)
    outcomes = {i["node"]["name"]: i["verdict"]["outcome"] for i in data["items"]}
    assert outcomes == {"n1": "passed", "n2": "failed", "n3": "passed"}
    run_dir = next((pytester.path / "mlperf-results").glob("*/results.json")).parent
    result.stdout.fnmatch_lines([f"logs: {run_dir}/nodes/n2/tiny-99/SingleStream/performance"])
    # the same run, table again from the CLI, and two of its nodes side by side
    cli = [sys.executable, "-m", "pytest_mlperf.cli"]
    fleet = subprocess.run([*cli, "fleet", str(run_dir)], capture_output=True, text=True)
    assert fleet.returncode == 1 and "fleet outlier: node n2" in fleet.stdout
    compare = subprocess.run(
        [*cli, "compare", f"{run_dir}@n1", f"{run_dir}@n2"], capture_output=True, text=True
    )
    assert compare.returncode == 0, compare.stderr
    (row,) = [line for line in compare.stdout.splitlines() if line.startswith("tiny-99")]
    assert row.split()[-1] == "worse"  # B (n2) is slower than A (n1)
