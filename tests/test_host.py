"""Host probe, checks, provisioning plan and custom systems, on captured real tool output."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_mlperf.backends.nvidia.custom_system import (
    config_text,
    custom_list_text,
    custom_system_id,
    load_systems,
    match_system,
    system_entry,
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


#: ``lspci -n -d 10de:`` of each captured board (real format: address, class, vendor:device)
LSPCI = {
    "a100x8.csv": "lspci-hgx-a100.txt",
    "h100x8.csv": "lspci-hgx-h100.txt",
    "h200-x1.csv": "lspci-h200-x1.txt",
    "h100-pcie-x1.csv": "lspci-h100-pcie-x1.txt",
}
NO_SYSFS = HOST / "no-such-sysfs"


def host(
    csv: str,
    fm: str | None,
    runtimes: Sequence[str] = ("nvidia", "runc"),
    fm_active: str = "active",
) -> HostRecord:
    lspci = LSPCI.get(csv)
    fake = FakeHost(
        {
            ("lspci",): None if lspci is None else (HOST / lspci).read_text(),
            ("nvidia-smi", "--query-gpu"): (HOST / csv).read_text(),
            ("nvidia-smi",): (HOST / "nvidia-smi-a100x8.txt").read_text(),
            ("nv-fabricmanager",): None if fm is None else (HOST / fm).read_text(),
            ("systemctl", "is-active"): fm_active + "\n",
            ("lscpu",): (HOST / "lscpu-epyc.txt").read_text(),
            ("cat", "/proc/meminfo"): (HOST / "meminfo.txt").read_text(),
        }
    )
    return probe_host(
        fake, nvml_loader=no_nvml, docker_client=lambda: Engine(runtimes), sysfs=NO_SYSFS
    )


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
    # ECC: the table's "Volatile Uncorr. ECC" column shows each GPU's count (0): ECC is on
    assert [g.ecc_mode for g in record.gpus] == ["Enabled"] * 8


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
    assert req.value == "fabric manager 550.90.07 ≠ driver 550.127.05"
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
    assert req.name == "fabric-manager" and req.value == (
        "not installed, but this NVSwitch system needs it "
        "(6 NVSwitch device(s) on the PCI bus (lspci) (10de:1af1))"
    )
    stopped = host("a100x8.csv", "fabricmanager-550.127.05.txt", fm_active="inactive")
    assert [r.fix for r in failed(check_host(stopped))] == [
        "systemctl enable --now nvidia-fabricmanager"
    ]


def test_mig_and_missing_container_runtime() -> None:
    record = host("a100x1-mig.csv", None, runtimes=("runc",))
    assert record.mig_enabled and record.gpus[0].mig_mode == "Enabled"
    # no PCI listing and no NVML fabric facts for this capture: the fabric manager is checked
    fabric, req = sorted(failed(check_host(record)), key=lambda r: r.name)
    assert fabric.name == "fabric-manager" and "could not be decided" in fabric.value
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
    argv = {s.name: s.argv for s in steps if not s.done}
    assert argv["fabric-manager"] == (
        "apt-get",
        "install",
        "-y",
        "cuda-drivers-fabricmanager-550=550.127.05-1",
    )
    assert argv["hold-driver-packages"] == (
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


def test_custom_definitions_build_on_the_stub_and_the_base_configs() -> None:
    record = host("h100x8.csv", "fabricmanager-550.90.07.txt")
    spec = match_system(record, load_systems())
    assert spec is not None and spec.system_id == "H100_SXM_80GBx8"
    system_id = custom_system_id(spec)
    assert system_id == "H100_SXM_80GBx8_PytestMlperf"  # never a built-in id
    stub = (STANDIN / "scripts/custom_systems/stubs/custom_system.py.stub").read_text()
    listing = custom_list_text(stub, system_entry(spec, record, system_id))
    assert listing.startswith(stub.rstrip("\n"))  # the stub's imports come first
    assert "KnownGPU.H100_SXM_80GB.value: 8" in listing and "core_count=48" in listing
    assert "CPU(name='AMD EPYC 7V12 64-Core Processor'" in listing
    own = custom_list_text(None, system_entry(spec, record, system_id))  # no stub: our imports
    assert "from code.common.systems.systems import SystemConfiguration" in own
    compile(own, "custom_list.py", "exec")  # valid Python
    offline = config_text(system_id, "bert", "Offline", spec.configs["bert"]["Offline"])
    # seen: with the custom path set only this file is imported, so it imports the harness's
    # own configs itself, with importlib ("3d-unet" is no identifier for a from-import)
    assert "_importlib.import_module('configs.bert.Offline')" in offline
    assert f"(OfflineGPUBaseConfig):\n    system = KnownSystem.{system_id}" in offline
    assert "AccuracyTarget.k_99_9" in offline and 'precision = "fp16"' in offline
    compile(offline, "custom.py", "exec")
    unet = config_text(system_id, "3d-unet", "Offline", spec.configs["3d-unet"]["Offline"])
    compile(unet, "custom.py", "exec")  # was a SyntaxError: from configs.3d-unet.Offline ...
    assert "import_module('configs.3d-unet.Offline')" in unet
    # only the config_vers the harness lacks: a second k_99 registration is a KeyError
    only_ha = config_text(system_id, "bert", "Server", {"gpu_batch_size": 8}, ["high_accuracy"])
    assert "AccuracyTarget.k_99_9" in only_ha and "AccuracyTarget.k_99," not in only_ha
    # the harness reads meminfo kB as 1000 bytes (MemTotal 907005532 kB)
    assert "Memory(quantity=907.01, byte_suffix=ByteSuffix.GB)" in own
    assert match_system(host("h100-pcie-x1.csv", None), load_systems()) is None


@pytest.mark.parametrize(
    ("csv", "needed", "found"),
    [
        # NVML names HGX boards' GPUs without "SXM": the PCI bus decides
        ("h100x8.csv", True, "fabric manager 550.90.07 = driver 550.90.07"),
        ("a100x8.csv", True, None),
        ("h200-x1.csv", False, "not needed: no NVSwitch on the PCI bus (lspci)"),
        ("h100-pcie-x1.csv", False, "not needed: no NVSwitch on the PCI bus (lspci)"),
    ],
)
def test_nvswitch_decided_from_the_pci_bus(csv: str, needed: bool, found: str | None) -> None:
    record = host(csv, "fabricmanager-550.90.07.txt")
    assert record.needs_fabric_manager is needed
    req = {r.name: r for r in check_host(record)}["fabric-manager"]
    if found is not None:
        assert req.value == found
    if csv == "h100x8.csv":
        assert record.gpu_names == ["NVIDIA H100 80GB HBM3"]
        assert record.fabric_manager_reason == (
            "4 NVSwitch device(s) on the PCI bus (lspci) (10de:22a3)"
        )
        assert req.ok


def test_bare_host_plan_includes_the_pinned_fabric_manager_step() -> None:
    """No driver yet (NVML and nvidia-smi absent): lspci still sees the NVSwitches."""
    fake = FakeHost(
        {
            ("lspci",): (HOST / "lspci-hgx-h100.txt").read_text(),
            ("nvidia-smi",): None,
            ("nv-fabricmanager",): None,
            ("lscpu",): (HOST / "lscpu-epyc.txt").read_text(),
            ("cat", "/proc/meminfo"): (HOST / "meminfo.txt").read_text(),
        }
    )
    bare = probe_host(fake, nvml_loader=no_nvml, docker_client=lambda: Engine([]), sysfs=NO_SYSFS)
    assert bare.gpus == [] and bare.needs_fabric_manager
    steps = {
        s.name: s for s in plan_provisioning(bare, load_host_requirements(), set(), False, None)
    }
    assert steps["fabric-manager"].render() == (
        "apt-get install -y "
        "'cuda-drivers-fabricmanager-550=<driver version after the driver step>-1'"
    )
    assert not steps["fabric-manager"].done
    assert "cuda-drivers-fabricmanager-550" in steps["hold-driver-packages"].argv
    # a single H200 (no NVSwitch): the plan says why there is nothing to install
    single = host("h200-x1.csv", None)
    steps = {
        s.name: s for s in plan_provisioning(single, load_host_requirements(), set(), True, None)
    }
    assert steps["fabric-manager"].done and steps["fabric-manager"].argv == ()
    assert steps["fabric-manager"].why == "not needed: no NVSwitch on the PCI bus (lspci)"
    assert "cuda-drivers-fabricmanager-550" not in steps["hold-driver-packages"].argv


def test_nvswitch_from_sysfs_then_nvml_fabric_when_lspci_is_missing(tmp_path: Path) -> None:
    from pytest_mlperf.host.probe import probe_fabric, probe_nvswitches

    for name, vendor, klass, device in [
        ("0000:05:00.0", "0x10de", "0x068000", "0x22a3"),
        ("0000:18:00.0", "0x10de", "0x030200", "0x2330"),
        ("0000:00:1f.0", "0x8086", "0x060100", "0x1234"),
    ]:
        dev = tmp_path / name
        dev.mkdir()
        (dev / "vendor").write_text(vendor + "\n")
        (dev / "class").write_text(klass + "\n")
        (dev / "device").write_text(device + "\n")
    record = HostRecord()
    probe_nvswitches(record, FakeHost({("lspci",): None}), sysfs=tmp_path)
    assert record.nvswitches == ["0000:05:00.0 10de:22a3"] and record.needs_fabric_manager
    assert record.fabric_manager_reason.endswith(f"on the PCI bus ({tmp_path}) (10de:22a3)")

    class Nvml:  # NVML's fabric facts (nvmlDeviceGetGpuFabricInfo) on a Hopper HGX board
        def nvmlInit(self) -> None: ...
        def nvmlShutdown(self) -> None: ...
        def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
            return index

        def nvmlDeviceGetGpuFabricInfo(self, handle: int) -> object:
            return type("Info", (), {"state": 3})()

    blind = HostRecord(fabric_states=probe_fabric(Nvml(), 8))  # no bus listing at all
    assert blind.nvswitches is None and blind.fabric_states == ["completed"] * 8
    assert blind.needs_fabric_manager
    assert not HostRecord(fabric_states=["not supported"]).needs_fabric_manager


def test_quick_flag_by_harness_version(tmp_path: Path) -> None:
    assert detect_quick_flag(STANDIN).flag == "--test_run"
    v40 = tmp_path / "inference_results_v4.0" / "closed" / "NVIDIA"
    v40.mkdir(parents=True)
    assert detect_quick_flag(v40).flag == "--fast"
    v41 = tmp_path / "inference_results_v4.1" / "closed" / "NVIDIA"
    v41.mkdir(parents=True)
    assert detect_quick_flag(v41).flag == "--test_run"


def test_fabric_manager_undecided_when_the_pci_listing_shows_no_gpu(tmp_path: Path) -> None:
    """A container or restricted sysfs: no lspci, a /sys/bus/pci with no NVIDIA device at all,
    while nvidia-smi lists the 8 GPUs of an HGX H100 board (captured outputs). Absence of
    evidence is no evidence: NVML's fabric state decides, else the check runs."""
    dev = tmp_path / "0000:00:1f.0"  # only the host's own devices are visible
    dev.mkdir()
    (dev / "vendor").write_text("0x8086\n")
    (dev / "class").write_text("0x060100\n")
    (dev / "device").write_text("0x1234\n")
    fake = FakeHost(
        {
            ("lspci",): None,
            ("nvidia-smi", "--query-gpu"): (HOST / "h100x8.csv").read_text(),
            ("nvidia-smi",): (HOST / "nvidia-smi-a100x8.txt").read_text(),
            ("nv-fabricmanager",): None,
            ("lscpu",): (HOST / "lscpu-epyc.txt").read_text(),
            ("cat", "/proc/meminfo"): (HOST / "meminfo.txt").read_text(),
        }
    )
    record = probe_host(fake, nvml_loader=no_nvml, docker_client=lambda: Engine([]), sysfs=tmp_path)
    assert len(record.gpus) == 8 and record.nvswitches is None
    assert any("lists no NVIDIA GPU while nvidia-smi reports 8" in e for e in record.errors)
    assert record.needs_fabric_manager
    req = {r.name: r for r in check_host(record)}["fabric-manager"]
    assert not req.ok  # checked, and nv-fabricmanager is not installed
    assert "could not be decided" in req.value and "no NVSwitch" not in req.value
    # the same listing with NVML's fabric facts: NVML decides
    record.fabric_states = ["not supported"] * 8
    assert not record.needs_fabric_manager
    assert record.fabric_manager_reason.startswith("PCI bus not read; NVML fabric state")


class DocumentedNvml:
    """NOT captured output: a fake of the pynvml calls probe_nvml makes, answering what
    NVML documents (nvmlDeviceGetEccMode: [current, pending] as nvmlEnableState_t,
    NVML_FEATURE_DISABLED 0 / NVML_FEATURE_ENABLED 1; NVML_ERROR_NOT_SUPPORTED on a GPU
    without ECC). The constants and the error class are the installed nvidia-ml-py's."""

    def __init__(self, ecc: Sequence[object]) -> None:
        import pynvml

        self.NVMLError = pynvml.NVMLError
        self.NVML_FEATURE_ENABLED = pynvml.NVML_FEATURE_ENABLED
        self._pynvml = pynvml
        self.ecc = list(ecc)

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.127.05"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return 12040

    def nvmlDeviceGetCount(self) -> int:
        return len(self.ecc)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetMigMode(self, handle: int) -> list[int]:
        return [0, 0]

    def nvmlDeviceGetPowerManagementLimit(self, handle: int) -> int:
        return 700000

    def nvmlDeviceGetEccMode(self, handle: int) -> list[int]:
        state = self.ecc[handle]
        if state is None:
            raise self._pynvml.NVMLError(self._pynvml.NVML_ERROR_NOT_SUPPORTED)
        assert isinstance(state, int)
        return [state, state]

    def nvmlDeviceGetPciInfo(self, handle: int) -> object:
        class Pci:
            pciDeviceId = 0x233510DE

        return Pci()

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "NVIDIA H200"

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return f"GPU-{handle}"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> object:
        class Memory:
            total = 143771 * 1024 * 1024

        return Memory()


def test_ecc_mode_from_nvml_documented_states() -> None:
    import pynvml

    from pytest_mlperf.host.probe import probe_nvml

    nvml = DocumentedNvml([pynvml.NVML_FEATURE_ENABLED, pynvml.NVML_FEATURE_DISABLED, None])
    _driver, cuda, gpus = probe_nvml(nvml)
    assert cuda == "12.4"
    assert [g.ecc_mode for g in gpus] == ["Enabled", "Disabled", None]
    assert HostRecord(gpus=gpus).to_dict()["gpus"][1]["ecc_mode"] == "Disabled"


def test_ecc_modes_from_the_captured_nvidia_smi_table() -> None:
    from pytest_mlperf.host.probe import smi_ecc_modes

    modes = smi_ecc_modes((HOST / "nvidia-smi-a100x8.txt").read_text())
    assert modes == dict.fromkeys(range(8), "Enabled")
    assert smi_ecc_modes("no table") == {}
