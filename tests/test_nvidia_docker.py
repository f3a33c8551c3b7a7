"""The nvidia backend against a real Docker engine and the stand-in harness image."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.backends.base import RunRequest
from pytest_mlperf.backends.nvidia import NvidiaBackend, NvidiaSettings
from pytest_mlperf.backends.reference import ReferenceBackend
from pytest_mlperf.catalog import default_dirs, load_catalog
from pytest_mlperf.errors import BackendError
from pytest_mlperf.results.loadgen import parse_dir
from tests.conftest import load_results
from tests.loadgen_runs import run_tiny
from tests.standin import SESSION_LABEL, calls, make_harness, session_tag, set_conf, standin_args

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def docker_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Docker engine reachable ({exc}); .ci/run starts one")
    yield client
    remove_ours(client, session_tag(tmp_path_factory.getbasetemp()))


def remove_ours(client: Any, tag: str) -> None:
    """Remove the containers and images this test session made, and nothing else."""
    images = client.images.list(filters={"label": f"{SESSION_LABEL}={tag}"})
    ids = {image.id for image in images}
    for container in client.containers.list(
        all=True, filters={"label": "pytest-mlperf.managed=true"}
    ):
        if container.image.id in ids:
            container.remove(force=True)
    for image in images:
        client.images.remove(image.id, force=True)


@pytest.fixture(scope="module")
def standin_logs(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    """Real LoadGen logs (reference backend) for the stand-in to hand back, all VALID.

    No minimum duration, so machine noise cannot make them INVALID; the query counts
    still let LoadGen's early stopping decide.
    """
    root = tmp_path_factory.mktemp("standin-logs")
    backend = ReferenceBackend(model_cache)
    for scenario in ("Offline", "Server", "SingleStream"):
        run_tiny(backend, root / scenario, scenario, overrides={"min_duration_ms": 0})
        assert parse_dir(root / scenario).result_validity == "VALID"
    return root


@pytest.fixture
def harness(tmp_path: Path, standin_logs: Path) -> Path:
    return make_harness(tmp_path, standin_logs)


def backend_for(harness: Path, tmp_path: Path, **kw: Any) -> NvidiaBackend:
    settings = NvidiaSettings(
        harness_dir=harness,
        scratch_path=tmp_path / "scratch",
        results_dir=tmp_path / "results",
        devices=None,
        **kw,
    )
    (tmp_path / "scratch").mkdir(exist_ok=True)
    return NvidiaBackend(settings)


def request(
    tmp_path: Path, scenario: str = "Offline", fast: bool = True, name: str = "item"
) -> RunRequest:
    catalog = load_catalog(default_dirs())
    out = tmp_path / "results" / name / scenario
    out.mkdir(parents=True)
    return RunRequest(
        catalog.benchmark("bert-99"),
        catalog.variant("bert-99"),
        scenario,
        "performance",
        "default",
        fast,
        out,
    )


def prepare(backend: NvidiaBackend, lines: list[str] | None = None) -> None:
    catalog = load_catalog(default_dirs())
    bert = catalog.benchmark("bert-99")
    backend.prepare(
        [(bert, "Offline"), (bert, "SingleStream")], (lines if lines is not None else []).append
    )


def test_prepare_builds_launches_and_stages_once_then_reuses(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    first = backend_for(harness, tmp_path)
    lines: list[str] = []
    prepare(first, lines)
    assert first.info["image_built"] is True
    assert first.info["container_action"] == "launched"
    assert calls(harness) == [
        "link_dirs",
        "download_data bert",
        "download_model bert",
        "preprocess_data bert",
        "build",
    ]
    assert any("image pytest-mlperf/harness:" in line and "building" in line for line in lines)
    described = first.describe()
    assert described["docker_reachable"] is True
    assert {r["name"] for r in described["requirements"]} == {"docker"}

    again = backend_for(harness, tmp_path)
    start = time.perf_counter()
    prepare(again)
    assert time.perf_counter() - start < 30
    assert again.info["image_built"] is False
    assert again.info["container_action"] == "reused"
    assert again.info["stages_skipped"] == [
        "link_dirs",
        "download_data-bert",
        "download_model-bert",
        "preprocess_data-bert",
        "build",
    ]
    assert len(calls(harness)) == 5  # nothing ran twice

    docker_client.containers.get(again.info["container"]).kill()
    third = backend_for(harness, tmp_path)
    prepare(third)
    assert third.info["container_action"] == "relaunched"


def test_run_per_item_log_dir_and_quick_flag(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    backend = backend_for(harness, tmp_path)
    prepare(backend)
    assert backend.info["quick_flag"] == "--test_run"
    req = request(tmp_path)
    outcome = backend.run(req, lambda _l: None)
    assert outcome.log_dir == req.outdir / "harness" / "STANDIN_SYSTEM_TRT" / "bert-99" / "Offline"
    assert "--test_run" in outcome.settings["run_args"]
    parsed = parse_dir(outcome.log_dir)
    assert parsed.result_validity == "VALID" and parsed.scenario == "Offline"
    assert outcome.compare is not None
    notes = outcome.compare(parsed)
    assert notes == [
        "metadata.json says INVALID (the harness enforces the 10-minute rule on test runs); LoadGen says VALID"
    ]
    assert (
        outcome.details
        and outcome.details["harness_metadata"]["system_name"] == "STANDIN_SYSTEM_TRT"
    )
    assert (outcome.settings["timeout_s"], outcome.settings["timeout_source"]) == (
        1800.0,
        "bert.json timeouts_s/performance/fast/Offline",
    )
    full = backend.run(request(tmp_path, "SingleStream", fast=False), lambda _l: None)
    assert full.settings["quick_flag"] is None and "--test_run" not in full.settings["run_args"]
    assert (full.settings["timeout_s"], full.settings["timeout_source"]) == (
        3600.0,
        "bert.json timeouts_s/performance/full/SingleStream",
    )


def test_v40_harness_gets_fast_not_test_run(
    docker_client: Any, tmp_path: Path, standin_logs: Path
) -> None:
    harness = make_harness(tmp_path, standin_logs, version="4.0")
    backend = backend_for(harness, tmp_path)
    prepare(backend)
    assert backend.info["quick_flag"] == "--fast"
    outcome = backend.run(request(tmp_path), lambda _l: None)
    assert outcome.settings["run_args"].endswith("--test_mode=PerformanceOnly --fast")
    # a v4.0 harness refuses v4.1's flag, so the detection really matters
    set_conf(harness, version="4.0")
    assert backend.container is not None
    refused = backend.container.exec(
        ["make", "run", "RUN_ARGS=--benchmarks=bert --test_run", "LOG_DIR=/tmp/x"]
    )
    assert refused.exit_code == 2 and "unrecognized arguments: --test_run" in refused.tail_text()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (
            "unknown_system",
            "no result: the harness said 'Detected system did not match any known systems'",
        ),
        ("exit_nonzero", "harness run exited with code 1:\n*TensorRT engine build failed"),
        ("wrong_dir", "no result: the harness wrote no LoadGen logs or metadata.json under"),
    ],
)
def test_harness_failures_are_surfaced(
    docker_client: Any, harness: Path, tmp_path: Path, mode: str, message: str
) -> None:
    backend = backend_for(harness, tmp_path)
    prepare(backend)
    set_conf(harness, mode=mode)
    with pytest.raises(BackendError) as info:
        backend.run(request(tmp_path), lambda _l: None)
    import fnmatch

    assert fnmatch.fnmatch(str(info.value), f"{message}*"), str(info.value)


def test_hung_harness_is_stopped_by_the_timeout(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    backend = backend_for(harness, tmp_path, timeout_s=3.0)
    prepare(backend)
    set_conf(harness, mode="hang")
    start = time.perf_counter()
    with pytest.raises(
        BackendError,
        match=r"harness run timed out after 3 s and was stopped \(timeout from --mlperf-timeout\)",
    ):
        backend.run(request(tmp_path), lambda _l: None)
    assert time.perf_counter() - start < 30
    assert backend.container is not None
    ps = backend.container.exec(["ps"]).tail_text(100)
    assert "sleep 3600" not in ps  # the whole process group is gone
    set_conf(harness, mode="ok")
    assert backend.run(request(tmp_path, name="next"), lambda _l: None).log_dir.is_dir()


def test_failing_stage_fails_with_exit_code_and_tail(
    docker_client: Any, tmp_path: Path, standin_logs: Path
) -> None:
    harness = make_harness(tmp_path, standin_logs, mode="fail_step", fail_step="download_model")
    backend = backend_for(harness, tmp_path)
    with pytest.raises(
        BackendError,
        match=r"harness step download_model-bert failed with exit code 2:\n.*no space left on device",
    ):
        prepare(backend)


def test_prebuilt_image_and_existing_container(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    built = backend_for(harness, tmp_path)
    prepare(built)
    image = built.info["image"]
    with_image = backend_for(harness, tmp_path, image=image)
    prepare(with_image)
    assert with_image.info["image"] == image and "image_built" not in with_image.info
    attached = backend_for(harness, tmp_path, container=built.info["container"])
    prepare(attached)
    assert attached.info["container_action"] == "attached"
    # provenance names the image's content ID, however it was chosen; a rebuild under the
    # same tag is another ID
    image_id = docker_client.images.get(image).id
    assert image_id.startswith("sha256:")
    for backend in (built, with_image, attached):
        assert backend.describe()["image_id"] == image_id
        assert backend.describe()["image_digests"] == []  # built here, never pushed
    from pytest_mlperf.provenance import SOFTWARE_FACTS

    assert {"image", "image_id", "image_digests"} <= set(SOFTWARE_FACTS)
    missing = backend_for(harness, tmp_path, image="pytest-mlperf/no-such-image:1")
    with pytest.raises(BackendError, match="image 'pytest-mlperf/no-such-image:1' not found"):
        prepare(missing)


def test_plugin_end_to_end_on_the_standin(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path, model_cache: Path
) -> None:
    harness = make_harness(pytester.path, standin_logs)
    result = pytester.runpytest(
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
        "--junitxml=junit.xml",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*[[]mlperf[]] host check docker: ok*", "*bert-99*Offline*performance*VALID*PASSED*"]
    )
    data = load_results(pytester.path)
    assert data["backend"] == "nvidia"
    assert data["host"]["requirements"][0]["name"] == "docker"
    item = data["items"][0]
    assert item["backend_details"]["harness_metadata"]["result_validity"] == "INVALID"
    assert any("10-minute rule" in w for w in item["warnings"])
    assert (
        json.loads((Path(item["item_dir"]) / "result.json").read_text())["nodeid"] == item["nodeid"]
    )
    import xml.etree.ElementTree as ET

    props = {
        p.get("name"): p.get("value")
        for p in ET.parse(pytester.path / "junit.xml").getroot().iter("property")
    }
    assert props["mlperf/host/check_docker"] == "ok"
    assert props["mlperf/host/quick_flag"] == "--test_run"


@pytest.mark.parametrize(("score", "outcome"), [("90.5", "passed"), ("89.0", "failed")])
def test_accuracy_judged_on_our_target_from_harness_metadata(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path, score: str, outcome: str
) -> None:
    harness = make_harness(pytester.path, standin_logs, accuracy=score)
    result = pytester.runpytest(
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline",
        "--mlperf-mode=accuracy",
        "--mlperf-fast",
    )
    item = load_results(pytester.path)["items"][0]
    assert item["verdict"]["outcome"] == outcome
    accuracy = item["accuracy"]
    assert accuracy["source"] == "harness" and accuracy["value"] == float(score)
    assert accuracy["threshold"] == 89.96526  # our data's 99 % target, not the harness's alone
    assert accuracy["recomputed"] is None  # no converted data set in the scratch path
    if outcome == "failed":
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*F1*89.000*>= 89.965 (99 % of FP32 90.874)*FAIL*"])
    else:
        result.assert_outcomes(passed=1)


def test_container_killed_mid_run_fails_the_item_then_relaunches(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    import threading

    backend = backend_for(harness, tmp_path, timeout_s=60.0)
    prepare(backend)
    set_conf(harness, mode="hang")
    name = backend.info["container"]
    threading.Timer(2.0, lambda: docker_client.containers.get(name).kill()).start()
    start = time.perf_counter()
    with pytest.raises(BackendError) as info:
        backend.run(request(tmp_path), lambda _l: None)
    assert time.perf_counter() - start < 30  # not the 60 s timeout
    assert str(info.value).startswith("harness run exited with code 137:")  # SIGKILL, said plainly
    assert "harness is hanging" in str(info.value)  # with the output tail
    set_conf(harness, mode="ok")
    again = backend_for(harness, tmp_path)
    prepare(again)
    assert again.info["container_action"] == "relaunched"
    assert again.run(request(tmp_path, name="after"), lambda _l: None).log_dir.is_dir()


@pytest.fixture(scope="module")
def compliance_logs(
    tmp_path_factory: pytest.TempPathFactory, standin_logs: Path, model_cache: Path
) -> Path:
    """The stand-in's logs plus real Offline accuracy and TEST01 audit runs of one QSL."""
    from pytest_mlperf.compliance import audit_settings
    from tests.conftest import TINY_DIR

    root = tmp_path_factory.mktemp("compliance-logs")
    shutil.copytree(standin_logs, root, dirs_exist_ok=True)
    backend = ReferenceBackend(model_cache)
    bench = load_catalog([*default_dirs(), TINY_DIR]).benchmark("tiny-99")
    audit = audit_settings("TEST01", bench)
    run_tiny(backend, root / "Offline-accuracy", "Offline", "accuracy", compliance="TEST01")
    run_tiny(
        backend,
        root / "Offline-audit",
        "Offline",
        overrides={"min_duration_ms": 0},
        compliance="TEST01",
        audit=audit,
    )
    return root


@pytest.mark.parametrize("cheat", [False, True])
def test_test01_through_the_harness(
    docker_client: Any,
    pytester: pytest.Pytester,
    compliance_logs: Path,
    model_cache: Path,
    cheat: bool,
) -> None:
    harness = make_harness(pytester.path, compliance_logs)
    if cheat:  # the audit run answered something else than the accuracy run for one sample
        log = harness / "standin-logs" / "Offline-audit" / "mlperf_log_accuracy.json"
        entries = json.loads(log.read_text())
        entries[0]["data"] = "00" * (len(entries[0]["data"]) // 2)
        log.write_text(json.dumps(entries))
    result = pytester.runpytest(
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline",
        "--mlperf-mode=all",
        "--mlperf-compliance=TEST01",
        "--mlperf-fast",
    )
    items = {i["mode"]: i for i in load_results(pytester.path)["items"]}
    comp = items["TEST01"]["compliance"]
    # the session's performance and accuracy items are reused; only the audit runs again
    assert comp["runs"]["performance_dir"] == items["performance"]["log_dir"]
    assert comp["runs"]["accuracy_dir"] == items["accuracy"]["log_dir"]
    assert [c for c in calls(harness) if c.startswith("audit")] == ["audit bert Offline"]
    assert not (harness / "audit.config").exists()  # removed after the audit run
    assert items["TEST01"]["loadgen"]["effective_accuracy_log_sampling_target"] == 4096
    acc = comp["accuracy"]
    if cheat:
        assert acc["mismatched"] == 1 and acc["matched"] == acc["sampled"] - 1
        assert items["TEST01"]["verdict"]["outcome"] == "failed"
        result.stdout.fnmatch_lines(["*TEST01:accuracy*1 differ*FAIL*"])
    else:
        assert acc["mismatched"] == 0 and acc["matched"] == acc["sampled"] > 0
        assert items["TEST01"]["verdict"]["outcome"] == "passed"


def test_container_that_exits_at_once_errors_every_item(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path
) -> None:
    """An image whose entrypoint fails a moment after it starts (a bad config): a single
    status look right after `docker run` still says running; the start grace period
    (START_GRACE_S) catches it."""
    harness = make_harness(pytester.path, standin_logs)
    dockerfile = harness / "docker" / "Dockerfile.x86_64"
    dockerfile.write_text(
        dockerfile.read_text()
        + 'ENTRYPOINT ["sh", "-c", "echo bad config: no such system >&2; sleep 0.3; exit 3"]\n'
    )
    result = pytester.runpytest(
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline,SingleStream",
        "--mlperf-fast",
    )
    result.assert_outcomes(errors=2)
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*container 'pytest-mlperf-*' from 'pytest-mlperf/harness:*' exited at once "
            "(exited, exit code 3)*",
            "bad config: no such system",
        ]
    )
    items = load_results(pytester.path)["items"]
    assert [i["verdict"]["outcome"] for i in items] == ["error", "error"]
    for item in items:
        (error,) = item["errors"]
        assert "exited at once (exited, exit code 3)" in error, error
        assert error.endswith("its last output:\nbad config: no such system"), error


def test_container_flags_are_the_documented_ones(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    """What the engine actually holds for a launched container (README "Container flags")."""
    backend = backend_for(harness, tmp_path)
    prepare(backend)
    host = docker_client.containers.get(backend.info["container"]).attrs["HostConfig"]
    assert [c.removeprefix("CAP_") for c in host["CapAdd"]] == ["SYS_ADMIN"]  # no SYS_TIME
    assert sorted(host["SecurityOpt"]) == ["apparmor=unconfined", "seccomp=unconfined"]
    assert host["NetworkMode"] == "host"
    scratch = (tmp_path / "scratch").resolve()
    assert sorted(host["Binds"]) == sorted(
        [f"{harness.resolve()}:/work:rw", f"{scratch}:{scratch}:rw"]
    )
    assert not host.get("DeviceRequests") and not host.get("Ulimits")  # --mlperf-devices=none


def test_gpu_containers_get_devices_shm_and_memlock() -> None:
    """GPU flags cannot be launched without a GPU engine: check what would be asked for."""
    from pytest_mlperf.container import ContainerSpec, launch_options

    spec = ContainerSpec("img", "name", {"/h": "/work"}, gpus=["0", "1"], nvidia_runtime=True)
    options = launch_options(spec)
    assert options["shm_size"] == "32g" and options["runtime"] == "nvidia"
    assert [(u.name, u.soft, u.hard) for u in options["ulimits"]] == [("memlock", -1, -1)]
    (request,) = options["device_requests"]
    assert request.device_ids == ["0", "1"] and request.capabilities == [["gpu"]]
    assert (
        launch_options(ContainerSpec("img", "name", {}, gpus=["all"]))["device_requests"][0].count
        == -1
    )
