"""Host probe, checks, provisioning plan and custom systems, on captured real tool output."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_mlperf.backends.nvidia.custom_system import (
    BEGIN,
    harness_knows,
    load_systems,
    match_system,
    write_overlay,
)
from pytest_mlperf.backends.nvidia.harness import detect_quick_flag
from pytest_mlperf.host.checks import check_host, describe_failures, failed
from pytest_mlperf.host.commands import CommandResult
from pytest_mlperf.host.plan import apply_plan, load_host_requirements, plan_provisioning
from pytest_mlperf.host.probe import HostRecord, parse_smi_csv, probe_host

HOST = Path(__file__).parent / "data" / "host"
STANDIN = Path(__file__).parent / "standin" / "harness"


class FakeHost:
    """Answers commands from captured outputs; records what was run."""

    def __init__(self, outputs: dict[tuple[str, ...], str | None]) -> None:
        self.outputs = outputs
        self.ran: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        key = tuple(argv)
        self.ran.append(key)
        for prefix, out in self.outputs.items():
            if len(key) >= len(prefix) and all(
                k.startswith(p) for k, p in zip(key, prefix, strict=False)
            ):
                if out is None:
                    return CommandResult(key, None, "", f"{argv[0]}: command not found")
                return CommandResult(key, 0, out, "")
        return CommandResult(key, 1, "", "unexpected command")


def no_nvml() -> None:
    raise RuntimeError("NVML Shared Library Not Found")


class Engine:
    def __init__(self, runtimes: Sequence[str]) -> None:
        self.runtimes = runtimes

    def info(self) -> dict[str, object]:
        return {"ServerVersion": "24.0.7", "Runtimes": {r: {} for r in self.runtimes}}


def host(
    csv: str,
    fm: str | None,
    runtimes: Sequence[str] = ("nvidia", "runc"),
    fm_active: str = "active",
) -> HostRecord:
    fake = FakeHost(
        {
            ("nvidia-smi", "--query-gpu"): (HOST / csv).read_text(),
            ("nvidia-smi",): (HOST / "nvidia-smi-a100x8.txt").read_text(),
            ("nv-fabricmanager",): None if fm is None else (HOST / fm).read_text(),
            ("systemctl", "is-active"): fm_active + "\n",
            ("lscpu",): (HOST / "lscpu-epyc.txt").read_text(),
            ("cat", "/proc/meminfo"): (HOST / "meminfo.txt").read_text(),
        }
    )
    return probe_host(fake, nvml_loader=no_nvml, docker_client=lambda: Engine(runtimes))


def test_nvidia_smi_fallback_on_the_seed_host() -> None:
    record = host("a100x8.csv", "fabricmanager-550.127.05.txt")
    assert record.gpu_source == "nvidia-smi"
    assert any(e.startswith("NVML:") for e in record.errors)
    assert (record.driver_version, record.cuda_version) == ("550.127.05", "12.4")
    assert len(record.gpus) == 8 and record.gpu_names == ["NVIDIA A100-SXM4-40GB"]
    assert record.gpus[3].power_limit_w == 400.0 and record.gpus[3].memory_mib == 40960
    assert record.needs_fabric_manager and record.fabric_manager_matches_driver
    assert (record.cpu_model, record.cpu_sockets, record.cpu_cores_per_socket) == (
        "AMD EPYC 7V12 64-Core Processor",
        2,
        48,
    )
    assert record.memory_kib == 907005532
    assert not failed(check_host(record))


def test_real_nvml_library_absent_here_falls_back() -> None:
    fake = FakeHost(
        {("nvidia-smi",): None, ("nv-fabricmanager",): None, ("lscpu",): None, ("cat",): None}
    )
    record = probe_host(fake, docker_client=lambda: Engine(["runc"]))  # the real pynvml
    assert record.gpus == [] and record.gpu_source is None
    assert any("NVML" in e for e in record.errors) and any(
        e.startswith("nvidia-smi:") for e in record.errors
    )
    reqs = {r.name: r for r in check_host(record)}
    assert not reqs["gpus"].ok and "install the NVIDIA driver" in reqs["gpus"].fix


def test_fabric_manager_mismatch_gives_the_exact_fix() -> None:
    record = host("a100x8.csv", "fabricmanager-550.90.07.txt")
    (req,) = [r for r in failed(check_host(record)) if r.name == "fabric-manager"]
    assert req.found == "fabric manager 550.90.07 ≠ driver 550.127.05"
    assert (
        req.fix
        == "install cuda-drivers-fabricmanager-550=550.127.05-1 and restart nvidia-fabricmanager"
    )
    assert (
        "fabric-manager: fabric manager 550.90.07 ≠ driver 550.127.05 — fix: install"
        in describe_failures(check_host(record))
    )


def test_missing_fabric_manager_matters_only_on_nvswitch_systems() -> None:
    pcie = host("h100-pcie-x1.csv", None)
    assert not pcie.needs_fabric_manager and not failed(check_host(pcie))
    sxm = host("a100x8.csv", None)
    (req,) = failed(check_host(sxm))
    assert (
        req.name == "fabric-manager"
        and req.found == "not installed, but this NVSwitch system needs it"
    )
    stopped = host("a100x8.csv", "fabricmanager-550.127.05.txt", fm_active="inactive")
    assert [r.fix for r in failed(check_host(stopped))] == [
        "systemctl enable --now nvidia-fabricmanager"
    ]


def test_mig_and_missing_container_runtime() -> None:
    record = host("a100x1-mig.csv", None, runtimes=("runc",))
    assert record.mig_enabled and record.gpus[0].mig_mode == "Enabled"
    (req,) = failed(check_host(record))
    assert (
        req.name == "nvidia-container-runtime"
        and "nvidia-ctk runtime configure --runtime=docker" in req.fix
    )


def test_csv_with_wrong_field_count_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="has 2 fields, expected 8"):
        parse_smi_csv("0, NVIDIA A100\n")


def test_provisioning_plan_fresh_host_and_idempotent_apply() -> None:
    target = load_host_requirements("v4.1")
    fresh = HostRecord(docker_reachable=False)
    steps = plan_provisioning(fresh, target, held=set(), has_cuda=False, cuda_runfile=None)
    todo = [s.render() for s in steps if not s.done]
    assert todo == [
        "apt-get install -y nvidia-driver-550-server nvidia-dkms-550-server",
        "apt-mark hold nvidia-driver-550-server nvidia-dkms-550-server",
        "sh cuda_12.4.0_550.54.14_linux.run --silent --toolkit",
        "apt-get install -y docker.io",
        "apt-get install -y nvidia-container-toolkit",
        "nvidia-ctk runtime configure --runtime=docker",
        "systemctl restart docker",
    ]
    sxm = host("a100x8.csv", "fabricmanager-550.90.07.txt", runtimes=("runc",))
    steps = plan_provisioning(
        sxm, target, held=set(), has_cuda=True, cuda_runfile=Path("/opt/cuda.run")
    )
    todo = {s.name: s.argv for s in steps if not s.done}
    assert todo["fabric-manager"] == (
        "apt-get",
        "install",
        "-y",
        "cuda-drivers-fabricmanager-550=550.127.05-1",
    )
    assert todo["hold-driver-packages"] == (
        "apt-mark",
        "hold",
        "nvidia-driver-550-server",
        "nvidia-dkms-550-server",
        "cuda-drivers-fabricmanager-550",
    )
    runner = FakeHost({(): ""})
    apply_plan(steps, runner, lambda _l: None)
    assert runner.ran == [s.argv for s in steps if not s.done]  # argument lists, in order

    done_host = host("a100x8.csv", "fabricmanager-550.127.05.txt")
    held = {"nvidia-driver-550-server", "nvidia-dkms-550-server", "cuda-drivers-fabricmanager-550"}
    steps = plan_provisioning(done_host, target, held=held, has_cuda=True, cuda_runfile=None)
    assert all(s.done for s in steps)
    idle = FakeHost({})
    assert apply_plan(steps, idle, lambda _l: None) < 2.0
    assert idle.ran == []


def test_failed_provisioning_step_stops_with_its_output() -> None:
    from pytest_mlperf.errors import BackendError

    steps = plan_provisioning(
        HostRecord(docker_reachable=True, docker_runtimes=["nvidia"]),
        load_host_requirements(),
        set(),
        True,
        None,
    )

    def broken(argv: Sequence[str]) -> CommandResult:
        return CommandResult(
            tuple(argv), 100, "", "E: Unable to locate package nvidia-driver-550-server"
        )

    with pytest.raises(
        BackendError,
        match=r"(?s)provisioning step 'driver' failed \(exit 100\).*Unable to locate package",
    ):
        apply_plan(steps, broken, lambda _l: None)


def test_custom_system_overlay_never_touches_the_harness(tmp_path: Path) -> None:
    harness = tmp_path / "harness"
    shutil.copytree(STANDIN, harness)
    original = harness / "configs" / "bert" / "Offline" / "custom.py"
    original.parent.mkdir(parents=True)
    original.write_text("# the harness's own generated file\nfrom . import *\n")
    before = {p: p.read_bytes() for p in harness.rglob("*") if p.is_file()}
    record = host("a100x8.csv", "fabricmanager-550.127.05.txt")
    spec = match_system(record, load_systems())
    assert spec is not None and spec.system_id == "A100_SXM4_40GBx8"
    assert not harness_knows(harness, spec.system_id)
    mounts = write_overlay(harness, tmp_path / "overlay", spec, record)
    assert {p: p.read_bytes() for p in harness.rglob("*") if p.is_file()} == before
    assert (
        mounts[str(tmp_path / "overlay" / "configs/bert/Offline/custom.py")]
        == "/work/configs/bert/Offline/custom.py"
    )
    offline = (tmp_path / "overlay" / "configs/bert/Offline/custom.py").read_text()
    assert offline.startswith("# the harness's own generated file")
    assert (
        BEGIN in offline and "offline_expected_qps = 30000" in offline and "'bert': 1024" in offline
    )
    assert "AccuracyTarget.k_99_9" in offline and 'precision = "fp16"' in offline
    systems = (tmp_path / "overlay" / "code/common/systems/custom_list.py").read_text()
    assert "KnownGPU.A100_SXM4_40GB.value: 8" in systems and "core_count=48" in systems
    compile(offline.replace("from . import *", ""), "custom.py", "exec")  # valid Python
    again = write_overlay(harness, tmp_path / "overlay", spec, record)  # idempotent: one block
    assert again == mounts
    assert (tmp_path / "overlay" / "configs/bert/Offline/custom.py").read_text().count(BEGIN) == 1
    assert match_system(host("h100-pcie-x1.csv", None), load_systems()) is None


def test_quick_flag_by_harness_version(tmp_path: Path) -> None:
    assert detect_quick_flag(STANDIN).flag == "--test_run"
    v40 = tmp_path / "inference_results_v4.0" / "closed" / "NVIDIA"
    v40.mkdir(parents=True)
    assert detect_quick_flag(v40).flag == "--fast"
    v41 = tmp_path / "inference_results_v4.1" / "closed" / "NVIDIA"
    v41.mkdir(parents=True)
    assert detect_quick_flag(v41).flag == "--test_run"
