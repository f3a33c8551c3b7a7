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
from tests.conftest import load_results, requires_service
from tests.loadgen_runs import run_tiny
from tests.shared_data import RESULTS_V41, SHARED_DATA, require_shared
from tests.standin import SESSION_LABEL, calls, make_harness, session_tag, set_conf, standin_args

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def docker_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        import docker
    except ImportError:
        requires_service("docker", "the docker package is not installed: pip install -e '.[test]'")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001
        requires_service(
            "docker", f"no Docker engine reachable ({exc}); .ci/start-docker starts one"
        )
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
        # these are only the logs the stand-in hands back: a loose Server bound, and the
        # first VALID of a few runs (a busy machine can still upset one)
        for _attempt in range(4):
            shutil.rmtree(root / scenario, ignore_errors=True)
            overrides: dict[str, float] = {"min_duration_ms": 0}
            if scenario == "Server":  # a latency bound no busy machine misses
                overrides.update(target_qps=100, latency_bound_ns=2e9)
            run_tiny(backend, root / scenario, scenario, overrides=overrides)
            parsed = parse_dir(root / scenario)
            if parsed.result_validity == "VALID":
                break
        assert parsed.result_validity == "VALID", [r.message for r in parsed.invalid_reasons]
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
        "build BUILD_TRTLLM=0 BUILD_TRITON=0",  # no TensorRT-LLM, no Triton for default
        # each distinct engine once, in preparation (the harness's own detection said which)
        "generate_engines bert Offline default STANDIN_SYSTEM",
        "generate_engines bert SingleStream default STANDIN_SYSTEM",
    ]
    assert first.info["harness_system_id"] == "STANDIN_SYSTEM"
    assert [e["action"] for e in first.info["engines"]] == ["built", "built"]
    assert sum("built engine bert" in w for w in first.work_done) == 2
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
    assert len(calls(harness)) == 7  # nothing ran twice: the engines are reused
    assert [e["action"] for e in again.info["engines"]] == ["reused", "reused"]
    assert not any("engine" in w for w in again.work_done)

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
        "metadata.json's summary_string says INVALID (the harness applies the 10-minute rule "
        "to test runs); LoadGen's result_validity is VALID"
    ]
    assert outcome.details and outcome.details["harness_metadata"]["result_validity"] == "VALID"
    # the engine was built in preparation: the item ran only run_harness, into its own LOG_DIR
    assert outcome.settings["engine"] == "built"
    assert calls(harness)[-1] == "run_harness bert Offline PerformanceOnly STANDIN_SYSTEM"
    assert not [c for c in calls(harness) if c.startswith("generate_engines bert Offline")][1:]
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
    # v4.1's metadata.json copies LoadGen's result_validity; only summary_string says INVALID
    assert item["backend_details"]["harness_metadata"]["result_validity"] == "VALID"
    assert "Result is INVALID" in item["backend_details"]["harness_metadata"]["summary_string"]
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


def test_test01_on_nvidia_is_refused_up_front(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path
) -> None:
    """v4.1 deletes audit.config at the start of every action (auditing.cleanup): an audit
    through run_harness can never be one, so the session refuses it as a usage error."""
    harness = make_harness(pytester.path, standin_logs)
    result = pytester.runpytest(
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline",
        "--mlperf-mode=all",
        "--mlperf-compliance=TEST01",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--mlperf-compliance=TEST01: TEST01 is not supported on the nvidia backend*run_audit_test01_once*"
        ]
    )
    assert calls(harness) == []  # nothing ran


def test_harness_audit_cleanup_removes_audit_config(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    """Why: the stand-in, like code/main.py, deletes audit.config before any action."""
    backend = backend_for(harness, tmp_path)
    prepare(backend)
    assert backend.container is not None
    backend.container.put_file("/work/audit.config", b"mode = 4\n")
    assert (
        backend.container.exec(
            ["make", "generate_engines", "RUN_ARGS=--benchmarks=bert --scenarios=Offline"]
        ).exit_code
        == 0
    )
    assert not backend.container.path_exists("/work/audit.config")


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
    build = backend.info["harness_build_dir"]
    assert build.startswith(f"{scratch}/.pytest-mlperf/build/")
    assert sorted(host["Binds"]) == sorted(
        [f"{harness.resolve()}:/work:rw", f"{scratch}:{scratch}:rw", f"{build}:/work/build:rw"]
    )
    assert not host.get("DeviceRequests") and not host.get("Ulimits")  # --mlperf-devices=none
    import os

    config = docker_client.containers.get(backend.info["container"]).attrs["Config"]
    assert config["User"] == f"{os.getuid()}:{os.getgid()}"  # NVIDIA's launch passes --user


def test_gpu_containers_get_devices_shm_and_memlock() -> None:
    """GPU flags cannot be launched without a GPU engine: check what would be asked for."""
    from pytest_mlperf.backends.nvidia.container import ContainerSpec, launch_options

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


# -- engines once, systems the harness detects itself, configs it lacks ----------------------

#: An OEM HGX H100 board: NVML's names for its GPUs, an AMD host CPU (v4.1's built-in
#: H100_SXM_80GBx8 pins an Intel Xeon Platinum 8480C, so the harness does not know it).
OEM_H100 = {
    "gpu_name": "NVIDIA H100 80GB HBM3",
    "gpu_count": "8",
    "cpu_name": "AMD EPYC 9654 96-Core Processor",
}
#: The seed's Azure ND96asr_v4: known to v4.1 (A100_SXM4_40GBx8 allows any x86 CPU), but it
#: has only a bert Offline config there.
AZURE_A100 = {
    "gpu_name": "NVIDIA A100-SXM4-40GB",
    "gpu_count": "8",
    "cpu_name": "AMD EPYC 7V12 64-Core Processor",
}


def engine_builds(harness: Path) -> list[str]:
    return [c for c in calls(harness) if c.startswith("generate_engines")]


def checkout_left_clean(harness: Path) -> None:
    """``git status`` shows nothing: the harness's build/ is ours in the scratch path, and
    the checkout keeps only the empty mount point (which plain ``make`` creates too)."""
    from tests.standin import git_status

    assert git_status(harness) == []
    assert (harness / "build").is_dir() and list((harness / "build").iterdir()) == []
    import os

    assert (harness / "build").stat().st_uid == os.getuid()  # not made by the engine as root


def test_engines_built_once_per_distinct_engine_and_reused_next_session(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path
) -> None:
    harness = make_harness(pytester.path, standin_logs)
    args = [*standin_args(pytester, harness), "--mlperf-benchmarks=bert,3d-unet"]
    first = pytester.runpytest(*args, "--mlperf-mode=all", "--mlperf-fast")
    first.assert_outcomes(passed=10)  # bert 3 scenarios + 3d-unet 2, performance + accuracy
    built = engine_builds(harness)
    assert sorted(built) == sorted(
        f"generate_engines {b} {s} default STANDIN_SYSTEM"
        for b, s in [
            ("bert", "Offline"),
            ("bert", "Server"),
            ("bert", "SingleStream"),
            ("3d-unet", "Offline"),
            ("3d-unet", "SingleStream"),
        ]
    )
    runs = [c for c in calls(harness) if c.startswith("run_harness")]
    assert len(runs) == 10
    items = load_results(pytester.path)["items"]
    assert {i["settings"]["engine"] for i in items} == {"built"}
    log = first.stdout.str()
    assert log.count("make generate_engines RUN_ARGS=") == 5

    shutil.rmtree(pytester.path / "mlperf-results")  # one results.json per session to read
    second = pytester.runpytest(*args, "--mlperf-mode=all", "--mlperf-fast")
    second.assert_outcomes(passed=10)
    assert engine_builds(harness) == built  # a second session builds none
    items = load_results(pytester.path)["items"]
    assert {i["settings"]["engine"] for i in items} == {"reused"}
    prepared = load_results(pytester.path)["host"]["engines"]
    assert [e["action"] for e in prepared] == ["reused"] * 5
    checkout_left_clean(harness)


def test_make_build_flags(docker_client: Any, harness: Path, tmp_path: Path) -> None:
    """Hopper (SM 90): Makefile.build would build TensorRT-LLM; we pass BUILD_TRTLLM=0, and
    BUILD_TRITON=1 only for a triton config_ver."""
    set_conf(harness, sm="90")
    prepare(backend_for(harness, tmp_path, config_vers=("default",)))
    assert "build BUILD_TRTLLM=0 BUILD_TRITON=0" in calls(harness)
    prepare(backend_for(harness, tmp_path, config_vers=("default", "triton")))
    assert calls(harness).count("build BUILD_TRTLLM=0 BUILD_TRITON=1") == 1
    from pytest_mlperf.backends.nvidia.stages import build_flags

    assert build_flags(["triton_high_accuracy"]) == ["BUILD_TRTLLM=0", "BUILD_TRITON=1"]


def test_oem_h100_with_amd_cpu_gets_a_generated_custom_system(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path
) -> None:
    harness = make_harness(pytester.path, standin_logs, **OEM_H100)
    result = pytester.runpytest(
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        "--mlperf-system=standin-oem",  # the stand-in's speed is no H100's: no thresholds
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*custom system H100_SXM_80GBx8_PytestMlperf*AMD EPYC 9654*"])
    data = load_results(pytester.path)
    custom = data["host"]["custom_system"]
    assert custom["system_id"] == "H100_SXM_80GBx8_PytestMlperf"  # not the built-in id
    definitions = Path(custom["definition_path"])
    assert definitions.is_relative_to(pytester.path / "scratch")  # outside the checkout
    listing = (definitions / "custom_systems" / "custom_list.py").read_text()
    assert "from code.common.systems.systems import SystemConfiguration" in listing  # the stub's
    assert "CPU(name='AMD EPYC 9654 96-Core Processor'" in listing
    config = (definitions / "custom_configs" / "bert" / "Offline" / "custom.py").read_text()
    # with the custom path set the harness imports only this file: it imports its own configs
    assert "import_module('configs.bert.Offline')" in config
    assert "(OfflineGPUBaseConfig):" in config and "offline_expected_qps = 72000" in config
    (item,) = data["items"]
    assert item["backend_details"]["harness_metadata"]["system_name"] == (
        "H100_SXM_80GBx8_PytestMlperf_TRT"
    )
    assert engine_builds(harness) == [
        "generate_engines bert Offline default H100_SXM_80GBx8_PytestMlperf"
    ]
    checkout_left_clean(harness)
    # plain `make run` in the checkout still works (it is unknown there, as before us)
    container = docker_client.containers.get(data["host"]["container"])
    plain = container.exec_run(["make", "run", "RUN_ARGS=--benchmarks=bert --scenarios=Offline"])
    assert plain.exit_code == 0
    assert b"Detected system did not match any known systems" in plain.output


def test_azure_a100x8_gets_offline_server_and_singlestream(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path
) -> None:
    harness = make_harness(pytester.path, standin_logs, **AZURE_A100)
    result = pytester.runpytest(
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline,Server,SingleStream",
        "--mlperf-fast",
        "--mlperf-system=standin-azure",
    )
    result.assert_outcomes(passed=3)
    data = load_results(pytester.path)
    assert data["host"]["harness_system_id"] == "A100_SXM4_40GBx8"  # known: no custom system
    assert "custom_system" not in data["host"]
    definitions = next((pytester.path / "scratch" / ".pytest-mlperf" / "custom").iterdir())
    # configs only where v4.1 has none (its own bert Offline config is used as is)
    assert sorted(p.parent.name for p in definitions.rglob("custom.py")) == [
        "Server",
        "SingleStream",
    ]
    server = (definitions / "custom_configs" / "bert" / "Server" / "custom.py").read_text()
    assert "system = KnownSystem.A100_SXM4_40GBx8" in server
    assert "server_target_qps = 24750" in server
    assert sorted(i["scenario"] for i in data["items"]) == ["Offline", "Server", "SingleStream"]
    configs = {e["scenario"]: e["config"] for e in data["host"]["engines"]}
    assert configs["Offline"] == "harness"
    assert configs["Server"] == str(
        definitions / "custom_configs" / "bert" / "Server" / "custom.py"
    )
    checkout_left_clean(harness)
    container = docker_client.containers.get(data["host"]["container"])
    plain = container.exec_run(
        ["make", "run", "RUN_ARGS=--benchmarks=bert --scenarios=Offline", "LOG_DIR=/tmp/plain"]
    )
    assert plain.exit_code == 0 and b"result:" in plain.output


def test_scenario_without_any_config_is_skipped_with_the_reason(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path
) -> None:
    """A100_SXM4_40GBx1: v4.1 has no bert Server config for it, and neither do we."""
    harness = make_harness(pytester.path, standin_logs, **{**AZURE_A100, "gpu_count": "1"})
    result = pytester.runpytest(
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline,Server",
        "--mlperf-fast",
        "-rs",
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*SKIPPED*the harness has no config for bert Server on A100_SXM4_40GBx1*"]
    )
    assert "INTERNALERROR" not in result.stdout.str()
    items = {i["scenario"]: i for i in load_results(pytester.path)["items"]}
    assert items["Server"]["verdict"]["outcome"] == "skipped"


def test_unknown_system_without_system_data_fails_preparation_clearly(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    set_conf(
        harness, gpu_name="NVIDIA L40S", gpu_count="4", cpu_name="AMD EPYC 7742 64-Core Processor"
    )
    with pytest.raises(
        BackendError,
        match=r"Detected system did not match any known systems' \(4x NVIDIA L40S, CPU AMD EPYC "
        r"7742.*no benchmarks/systems/\*\.json describes these GPUs \(described: 8x NVIDIA "
        r"A100-SXM4-40GB, 8x NVIDIA H100 80GB HBM3\)",
    ):
        prepare(backend_for(harness, tmp_path))


def test_recreated_checkout_relaunches_the_container(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    backend = backend_for(harness, tmp_path)
    prepare(backend)

    def recreate() -> None:  # the checkout removed and cloned again at the same path
        shutil.move(harness, tmp_path / "old-harness")
        shutil.copytree(tmp_path / "old-harness", harness, symlinks=True)
        shutil.rmtree(tmp_path / "old-harness")

    recreate()
    lines: list[str] = []
    outcome = backend.run(request(tmp_path), lines.append)  # exit 126, relaunched, run again
    assert outcome.log_dir.is_dir()
    assert lines[-1].endswith(": relaunched mid-session (its checkout mount was re-created)")
    recreate()  # between sessions: the next session's preparation relaunches it
    again = backend_for(harness, tmp_path)
    prepare(again)
    assert again.info["container_action"] == "relaunched"
    assert again.run(request(tmp_path, name="after"), lambda _l: None).log_dir.is_dir()


def test_accuracy_only_session_generates_its_engines_in_preparation(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path
) -> None:
    harness = make_harness(pytester.path, standin_logs)
    result = pytester.runpytest(
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline",
        "--mlperf-mode=accuracy",
        "--mlperf-fast",
    )
    result.assert_outcomes(passed=1)
    data = load_results(pytester.path)
    assert [(e["benchmark"], e["scenario"], e["action"]) for e in data["host"]["engines"]] == [
        ("bert", "Offline", "built")
    ]
    assert engine_builds(harness) == ["generate_engines bert Offline default STANDIN_SYSTEM"]


def test_standin_refuses_what_the_real_harness_refuses(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    """The failure modes the generated definitions avoid: a custom_list.py without the
    stub's imports (NameError on every make), the silent skip without a custom.py, a config
    registered twice (KeyError), a hyphenated from-import (SyntaxError), no custom_systems/
    (ModuleNotFoundError), a custom definition path that does not exist (FileNotFoundError)."""
    backend = backend_for(harness, tmp_path)
    prepare(backend)
    assert backend.container is not None
    box = backend.container
    custom = f"{(tmp_path / 'scratch').resolve()}/bad-custom"
    box.exec(["mkdir", "-p", f"{custom}/custom_systems", f"{custom}/custom_configs/bert/Offline"])
    box.put_file(
        f"{custom}/custom_systems/custom_list.py",
        b"custom_systems = dict()\ncustom_systems['X_1'] = SystemConfiguration(accelerator_conf="
        b"AcceleratorConfiguration(layout={KnownGPU.H100_SXM_80GB.value: 8}))\n",
    )
    env = {"MLPINF_CUSTOM_DEFINITION_PATH": custom}
    broken = box.exec(["python3", "-m", "scripts.get_system_id"], environment=env)
    assert broken.exit_code == 1 and "NameError" in broken.tail_text()
    box.exec(["rm", f"{custom}/custom_systems/custom_list.py"])
    make = ["make", "generate_engines", "RUN_ARGS=--benchmarks=bert --scenarios=Offline"]
    # seen (configs/configuration.py:118-136): with the path set only custom.py is imported;
    # without one nothing is registered and code.main exits 0 without a word (main.py:107)
    silent = box.exec(make, environment=env)
    assert silent.exit_code == 0 and silent.tail == [
        "[I] Detected system ID: KnownSystem.STANDIN_SYSTEM"
    ]
    box.put_file(
        f"{custom}/custom_configs/bert/Offline/custom.py",
        b"import importlib\n_own = importlib.import_module('configs.bert.Offline')\n"
        b"@ConfigRegistry.register(HarnessType.Custom, AccuracyTarget.k_99, PowerSetting.MaxP)\n"
        b"class Again(OfflineGPUBaseConfig):\n    system = KnownSystem.STANDIN_SYSTEM\n",
    )
    twice = box.exec(make, environment=env)
    assert twice.exit_code == 1 and "is already registered" in twice.tail_text()
    # seen: a hyphenated package in a from-import is a SyntaxError
    box.exec(["mkdir", "-p", f"{custom}/custom_configs/3d-unet/Offline"])
    box.put_file(
        f"{custom}/custom_configs/3d-unet/Offline/custom.py",
        b"from configs.3d-unet.Offline import *\n",
    )
    hyphen = box.exec(
        ["make", "generate_engines", "RUN_ARGS=--benchmarks=3d-unet --scenarios=Offline"],
        environment=env,
    )
    assert hyphen.exit_code == 1 and "SyntaxError" in hyphen.tail_text()
    # seen (system_list.py:162-173): no custom_systems/ there, every entry point exits 1
    box.exec(["rm", "-r", f"{custom}/custom_systems"])
    nolist = box.exec(["python3", "-m", "scripts.get_system_id"], environment=env)
    assert nolist.exit_code == 1
    assert "ModuleNotFoundError: No module named 'custom_systems'" in nolist.tail_text()
    missing = box.exec(
        ["python3", "-m", "scripts.get_system_id"],
        environment={"MLPINF_CUSTOM_DEFINITION_PATH": "/nowhere"},
    )
    assert missing.exit_code == 1 and "does not exist" in missing.tail_text()


def test_hung_engine_build_is_stopped_by_the_timeout(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    set_conf(harness, mode="hang_engines")
    backend = backend_for(harness, tmp_path, timeout_s=3.0)
    with pytest.raises(
        BackendError,
        match=r"(?s)make generate_engines for bert Offline default timed out after 3 s and was "
        r"stopped:\n.*building engines \(hanging\)",
    ):
        prepare(backend)
    assert backend.container is not None
    assert "sleep 3600" not in backend.container.exec(["ps"]).tail_text(100)


def test_engines_rebuilt_when_what_shapes_them_changed(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    prepare(backend_for(harness, tmp_path))
    assert len(engine_builds(harness)) == 2
    prepare(backend_for(harness, tmp_path))
    assert len(engine_builds(harness)) == 2  # nothing changed: reused
    config = harness / "configs" / "bert" / "Offline" / "__init__.py"
    config.write_text(config.read_text() + "# gpu_batch_size edited\n")  # uncommitted edit
    edited = backend_for(harness, tmp_path)
    prepare(edited)
    assert edited.info["harness_changes"].startswith("diff-")
    assert [e["action"] for e in edited.info["engines"]] == ["built", "built"]
    assert len(engine_builds(harness)) == 4
    # a different system (the harness detects it) is another engine too
    set_conf(harness, **AZURE_A100)
    other = backend_for(harness, tmp_path)
    prepare(other)
    assert other.info["harness_system_id"] == "A100_SXM4_40GBx8"
    assert [(e["scenario"], e["action"]) for e in other.info["engines"]] == [
        ("Offline", "built"),
        ("SingleStream", "built"),  # generated from our A100x8 data
    ]


def test_metadata_disagreeing_with_the_logs_is_a_warning_naming_both(
    docker_client: Any, harness: Path, tmp_path: Path
) -> None:
    """The stand-in's MODE=disagree writes a metadata.json figure other than LoadGen's: the
    cross-check names both; the logs' figure is the one kept (docs/faults.md)."""
    backend = backend_for(harness, tmp_path)
    prepare(backend)
    set_conf(harness, mode="disagree")
    outcome = backend.run(request(tmp_path), lambda _l: None)
    parsed = parse_dir(outcome.log_dir)
    assert parsed.result_validity == "VALID"
    assert outcome.compare is not None and outcome.details is not None
    key = "result_samples_per_second"
    assert outcome.details["harness_metadata"][key] == 1
    assert f"{key}: metadata.json 1, LoadGen log {parsed.loadgen[key]}" in outcome.compare(parsed)
    assert parsed.metric_value == parsed.loadgen[key] != 1


# -- --mlperf-dry-run ------------------------------------------------------------------------
ALL = ["--mlperf-benchmarks=bert,3d-unet", "--mlperf-mode=all", "--mlperf-fast"]


def _image(pytester: pytest.Pytester, harness: Path) -> list[str]:
    """A first session builds the image (the dry run builds nothing, not even that); the
    stand-in options for the next sessions."""
    args = standin_args(pytester, harness)
    first = pytester.runpytest(*args, "--mlperf-scenarios=Offline")
    assert first.ret == 0, first.stdout.str()[-2000:]
    return args


def test_dry_run_names_each_items_config_engine_and_command(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path
) -> None:
    harness = make_harness(pytester.path, standin_logs, **AZURE_A100)
    args = _image(pytester, harness)
    before = calls(harness)
    result = pytester.runpytest(
        *args,
        *ALL,
        "--mlperf-config-ver=high_accuracy",
        "--mlperf-dry-run",
        "-q",  # the dry run's answer is shown under -q too
    )
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    assert calls(harness) == before  # no harness step, no engine build, no run
    # NVIDIA's own config where v4.1 has one (A100x8 bert and 3d-unet Offline), ours elsewhere
    assert "bert SingleStream accuracy high_accuracy: KnownSystem.A100_SXM4_40GBx8" in out
    assert "config: configs.bert.Offline.A100_SXM4_40GBx8_HighAccuracy (the harness own)" in out
    assert "config: configs.3d-unet.Offline.A100_SXM4_40GBx8_HighAccuracy (the harness own)" in out
    assert "config: custom_configs.3d-unet.SingleStream.custom.A100_SXM4_40GBx8" in out
    assert (
        "engine: build/engines/DGX-A100_A100-SXM4-40GBx8/bert/Server/*.custom_k_99_9_MaxP.plan"
    ) in out
    # the custom definition path only for pairs with a generated config
    assert (
        "command: make run_harness RUN_ARGS='--benchmarks=bert --scenarios=Offline "
        "--config_ver=high_accuracy --test_mode=AccuracyOnly --test_run'"
    ) in out
    assert "command: MLPINF_CUSTOM_DEFINITION_PATH=" in out
    assert "dry run: 10 item(s), 10 would run, 0 skipped" in out


def test_dry_run_fails_in_the_harness_words_on_a_silent_skip(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path
) -> None:
    """A checkout with no config at all for a pair: code.main would skip it and exit 0."""
    harness = make_harness(pytester.path, standin_logs)
    args = _image(pytester, harness)
    set_conf(harness, no_configs="bert/Server")
    result = pytester.runpytest(*args, "--mlperf-scenarios=Offline,Server", "--mlperf-dry-run")
    out = result.stdout.str()
    assert result.ret == 1
    assert "bert Server default on STANDIN_SYSTEM: the harness registered no config at all" in out
    assert "skipped it without a word" in out


def test_dry_run_is_for_the_nvidia_backend_only(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--mlperf-backend=reference", "--mlperf-dry-run")
    assert result.ret == 4
    assert "the reference backend has no dry run (valid: --mlperf-backend=nvidia)" in (
        result.stdout.str() + result.stderr.str()
    )


# -- --mlperf-ab on the nvidia backend ---------------------------------------------------------
#: published LoadGen logs the stand-in hands back (bert-99 Offline, VALID): NVIDIA's v4.1
#: harness on H200 (73309.5 samples/s) and Lenovo's 2x L4 submission (1928.07 samples/s)
AB_FAST_LOG = SHARED_DATA / "nvidia-harness-v4.1-logs" / "bert-99" / "Offline" / "performance"
AB_SLOW_LOG = (
    RESULTS_V41 / "closed/Lenovo/results/Lenovo_2xL4_TRT/bert-99/Offline/performance/run_1"
)


def _offline_checkout(root: Path, log: Path, **conf: str) -> Path:
    """A stand-in checkout under ``root`` whose Offline runs hand back the published ``log``."""
    require_shared(log)
    shutil.copytree(log, root / "logs" / "Offline")
    return make_harness(root, root / "logs", **conf)


def _ab_item(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """One A/B session of bert Offline (2 rounds), in a subprocess: C extensions the
    session imports first (numpy for the report) cannot be loaded twice in one process."""
    result = pytester.runpytest_subprocess(
        "--mlperf-scenarios=Offline",
        "--mlperf-mode=performance",
        "--mlperf-fast",
        "--mlperf-ab-rounds=2",
        "--junitxml=junit.xml",
        "--html=report.html",
        *args,
    )
    (item,) = load_results(pytester.path)["items"]
    return result, item


def _commit(checkout: Path) -> str:
    import subprocess

    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip()


def test_ab_between_two_checkouts_runs_each_on_its_own_and_judges_the_pair(
    docker_client: Any, pytester: pytest.Pytester
) -> None:
    """Baseline: the session's checkout; candidate: another checkout (``harness_dir``),
    whose harness is slower. Each side builds its image and engines from its checkout once;
    the runs alternate ABBA and the pair is judged on their ratio."""
    from tests.standin import git_status

    # A's image has TensorRT (what its Python reports), B's has none
    a = _offline_checkout(pytester.path / "a", AB_FAST_LOG, tensorrt="10.2.0.19")
    b = _offline_checkout(pytester.path / "b", AB_SLOW_LOG)
    result, item = _ab_item(pytester, *standin_args(pytester, a), f"--mlperf-ab=;harness_dir={b}")
    result.assert_outcomes(failed=1)
    ab = item["ab"]
    assert ab["order"] == "ABBA" and ab["status"] == "regressed", ab["reason"]
    # which checkout ran each run: each hands back its own published log
    assert [r["value"] for r in ab["baseline"]["runs"]] == [73309.5, 73309.5]
    assert [r["value"] for r in ab["candidate"]["runs"]] == [1928.07, 1928.07]
    assert ab["ratios"] == [pytest.approx(1928.07 / 73309.5, abs=1e-4)] * 2
    # each checkout: its own setup and engine once, then its warm-up and its two rounds
    for checkout in (a, b):
        done = calls(checkout)
        assert done.count("generate_engines bert Offline default STANDIN_SYSTEM") == 1, done
        assert done.count("run_harness bert Offline PerformanceOnly STANDIN_SYSTEM") == 3, done
        assert done.count("build BUILD_TRTLLM=0 BUILD_TRITON=0") == 1
        assert git_status(checkout) == []  # the user's checkouts are as they were
    base, cand = ab["baseline"], ab["candidate"]
    assert (base["options"], cand["options"]) == ({}, {"harness_dir": str(b)})
    assert (base["identity"]["harness_dir"], cand["identity"]["harness_dir"]) == (str(a), str(b))
    assert base["identity"]["harness_commit"] == _commit(a) != _commit(b)
    assert cand["identity"]["harness_commit"] == _commit(b)
    assert base["identity"]["image"] != cand["identity"]["image"]  # built from each checkout
    assert base["identity"]["container"] != cand["identity"]["container"]
    assert base["identity"]["harness_build_dir"] != cand["identity"]["harness_build_dir"]
    assert base["fingerprint"]["harness_commit"] == _commit(a)
    assert cand["fingerprint"]["harness_commit"] == _commit(b)
    assert base["fingerprint_id"] != cand["fingerprint_id"]
    assert any(d.startswith("harness_commit: ") for d in ab["differs"]), ab["differs"]
    assert (base["identity"]["tensorrt_version"], cand["identity"]["tensorrt_version"]) == (
        "10.2.0.19",
        None,
    )
    assert (base["fingerprint"]["tensorrt"], cand["fingerprint"]["tensorrt"]) == ("10.2.0.19", None)
    assert "tensorrt: 10.2.0.19 (A), None (B)" in ab["differs"]
    assert load_results(pytester.path)["host"]["tensorrt_version"] == "10.2.0.19"
    report = (pytester.path / "report.html").read_text()
    assert f"harness_dir {a}" in report and f"harness_dir {b}" in report
    assert "sides differ in " in report and "harness_commit: " in report
    import xml.etree.ElementTree as ET

    props = {
        str(p.get("name")): str(p.get("value"))
        for p in ET.parse(pytester.path / "junit.xml").iter("property")
    }
    prefix = "mlperf/bert-99/Offline/performance"
    assert props[f"{prefix}/ab_candidate_fingerprint_id"] == cand["fingerprint_id"]


def test_ab_between_two_tags_of_one_image_keeps_each_sides_container_and_engines(
    docker_client: Any, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """``image=``: the same checkout under two tags of one built image. Each side has its
    own container and build directory (engines built once per side, never over the other
    side's); the same image and commit: nothing differs, A/A passes."""
    harness = _offline_checkout(pytester.path / "h", AB_FAST_LOG)
    built = backend_for(harness, tmp_path)  # builds the stand-in image once
    built.prepare([(load_catalog(default_dirs()).benchmark("bert-99"), "Offline")], print)
    image = docker_client.images.get(built.info["image"])
    for tag in ("a", "b"):
        assert image.tag("pytest-mlperf/ab-test", tag)
    before = len(calls(harness))
    result, item = _ab_item(
        pytester,
        *standin_args(pytester, harness),
        "--mlperf-image=pytest-mlperf/ab-test:a",
        "--mlperf-ab=;image=pytest-mlperf/ab-test:b",
    )
    result.assert_outcomes(passed=1)
    ab = item["ab"]
    assert ab["order"] == "ABBA" and ab["status"] == "passed", ab["reason"]
    assert ab["ratios"] == [1.0, 1.0] and ab["differs"] == []
    base, cand = ab["baseline"]["identity"], ab["candidate"]["identity"]
    assert (base["image"], cand["image"]) == ("pytest-mlperf/ab-test:a", "pytest-mlperf/ab-test:b")
    assert base["image_id"] == cand["image_id"] == image.id
    assert base["tensorrt_version"] is None  # the stand-in image has no TensorRT
    assert base["container"] != cand["container"]
    assert base["harness_build_dir"] != cand["harness_build_dir"]
    session = calls(harness)[before:]
    # an engine per side, each in its own build directory; 3 runs per side
    assert session.count("generate_engines bert Offline default STANDIN_SYSTEM") == 2, session
    assert session.count("run_harness bert Offline PerformanceOnly STANDIN_SYSTEM") == 6
    for side in (base, cand):
        engines = Path(side["harness_build_dir"]) / "engines"
        assert engines.is_dir() and any(engines.rglob("*.plan")), side
    assert ab["baseline"]["fingerprint_id"] == ab["candidate"]["fingerprint_id"]
