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

from pytest_mlperf.errors import BackendError
from tests.conftest import load_results, requires_service
from tests.standin import make_harness, set_conf, standin_args
from tests.test_nvidia_docker import (  # noqa: F401 - shared fixtures
    backend_for,
    docker_client,
    prepare,
    request,
    standin_logs,
)

pytestmark = pytest.mark.docker
ROOT = Path("/var/run/pytest-mlperf-docker-b")
DATA_ROOT = "/var/lib/pytest-mlperf-docker-b"
SOCKET = f"unix://{ROOT}/docker.sock"


class EngineB:
    """A second dockerd with its own data root, exec root, pid file and socket."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import docker

        ROOT.mkdir(parents=True, exist_ok=True)
        with open(ROOT / "dockerd.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "dockerd",
                    "--data-root",
                    DATA_ROOT,
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
                docker.DockerClient(base_url=SOCKET).ping()  # asks the engine for its API version
                return
            except Exception:  # noqa: BLE001
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    requires_service(
                        "docker",
                        "the second dockerd did not start: "
                        + (ROOT / "dockerd.log").read_text()[-500:],
                    )
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.proc = None

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=SOCKET)


@pytest.fixture(scope="module")
def engine_b(docker_client: Any) -> Iterator[EngineB]:  # noqa: F811
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        requires_service("docker", "a second Docker engine needs root and dockerd")
    engine = EngineB()
    engine.start()
    yield engine
    if engine.proc is not None:
        for container in engine.client().containers.list(all=True):
            container.remove(force=True)
    engine.stop()
    shutil.rmtree(DATA_ROOT, ignore_errors=True)


def test_workers_map_to_two_hosts_and_results_merge(
    engine_b: EngineB,
    pytester: pytest.Pytester,
    standin_logs: Path,  # noqa: F811
) -> None:
    harness = make_harness(pytester.path, standin_logs)
    result = pytester.runpytest(
        "-n",
        "2",
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
        f"--mlperf-docker-host=unix:///var/run/docker.sock,{SOCKET}",
        f"--mlperf-cache-dir={pytester.path / 'cache'}",
    )
    result.assert_outcomes(passed=2)
    data = load_results(pytester.path)
    hosts = {i["docker_host"] for i in data["items"]}
    assert hosts == {"unix:///var/run/docker.sock", SOCKET}
    built = sorted(
        w for p in data["preparations"] for w in p["work"] if w.startswith("built image")
    )
    assert len(built) == 2  # one image per engine, each built by the worker mapped to it
    for item in data["items"]:
        assert item["verdict"]["outcome"] == "passed"
        assert Path(item["log_dir"]).is_relative_to(Path(item["item_dir"]))  # fetched back


def test_engine_stopped_mid_session_then_started_again(
    engine_b: EngineB,
    tmp_path: Path,
    standin_logs: Path,  # noqa: F811
) -> None:
    from pytest_mlperf.placement import Placement

    harness = make_harness(tmp_path, standin_logs)
    backend = backend_for(harness, tmp_path, placement=Placement(docker_host=SOCKET))
    prepare(backend)
    set_conf(harness, mode="ok")
    assert backend.run(request(tmp_path, name="before"), lambda _l: None).log_dir.is_dir()
    engine_b.stop()
    start = time.perf_counter()
    with pytest.raises(BackendError, match=rf"the Docker engine {SOCKET} did not answer"):
        backend.run(request(tmp_path, name="down"), lambda _l: None)
    assert time.perf_counter() - start < 30
    engine_b.start()  # its containers come back stopped: the next item relaunches
    outcome = backend.run(request(tmp_path, name="after"), lambda _l: None)
    assert outcome.log_dir.is_dir()
    assert backend.info["container_action"] == "relaunched mid-session"
