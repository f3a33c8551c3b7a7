"""Two real Docker engines on this machine stand in for two GPU hosts."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_results
from tests.standin import make_harness
from tests.test_nvidia_docker import docker_client, standin_logs  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.docker
ROOT = Path("/var/run/pytest-mlperf-docker-b")
SOCKET = f"unix://{ROOT}/docker.sock"


@pytest.fixture(scope="module")
def second_engine(docker_client: Any) -> Iterator[str]:  # noqa: F811
    """A second dockerd with its own data root, exec root, pid file and socket."""
    import docker

    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("a second Docker engine needs root and dockerd")
    ROOT.mkdir(parents=True, exist_ok=True)
    log = open(ROOT / "dockerd.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            "/var/lib/pytest-mlperf-docker-b",
            "--exec-root",
            str(ROOT / "exec"),
            "--pidfile",
            str(ROOT / "docker.pid"),
            "--host",
            SOCKET,
            "--bridge",
            "none",
            "--iptables=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            client = docker.DockerClient(base_url=SOCKET)  # asks the engine for its API version
            client.ping()
            break
        except Exception:  # noqa: BLE001
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.terminate()
                pytest.skip(
                    f"the second dockerd did not start: {(ROOT / 'dockerd.log').read_text()[-500:]}"
                )
            time.sleep(0.3)
    yield SOCKET
    for container in client.containers.list(
        all=True, filters={"label": "pytest-mlperf.managed=true"}
    ):
        container.remove(force=True)
    for image in client.images.list(name="pytest-mlperf/harness"):
        client.images.remove(image.id, force=True)
    for container in client.containers.list(all=True):
        container.remove(force=True)
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    shutil.rmtree("/var/lib/pytest-mlperf-docker-b", ignore_errors=True)


def test_workers_map_to_two_hosts_and_results_merge(
    second_engine: str,
    pytester: pytest.Pytester,
    standin_logs: Path,  # noqa: F811
) -> None:
    harness = make_harness(pytester.path, standin_logs)
    scratch = pytester.mkdir("scratch")
    result = pytester.runpytest(
        "-n",
        "2",
        "--mlperf-backend=nvidia",
        f"--mlperf-harness-dir={harness}",
        f"--mlperf-scratch-path={scratch}",
        "--mlperf-devices=none",
        "--mlperf-benchmarks=bert",
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
        f"--mlperf-docker-host=unix:///var/run/docker.sock,{second_engine}",
        f"--mlperf-cache-dir={pytester.path / 'cache'}",
    )
    result.assert_outcomes(passed=2)
    data = load_results(pytester.path)
    hosts = {i["docker_host"] for i in data["items"]}
    assert hosts == {"unix:///var/run/docker.sock", second_engine}
    built = sorted(
        w for p in data["preparations"] for w in p["work"] if w.startswith("built image")
    )
    assert len(built) == 2  # one image per engine, each built by the worker mapped to it
    for item in data["items"]:
        assert item["verdict"]["outcome"] == "passed"
        assert Path(item["log_dir"]).is_relative_to(Path(item["item_dir"]))  # fetched back
