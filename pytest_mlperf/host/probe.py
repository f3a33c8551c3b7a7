"""Probe a GPU host: NVML first, ``nvidia-smi`` CSV as fallback, fabric manager, Docker."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.host.commands import Runner, run_command

#: ``nvidia-smi --query-gpu`` fields, in the order the CSV parser expects them.
SMI_FIELDS = (
    "index",
    "name",
    "uuid",
    "driver_version",
    "memory.total",
    "power.limit",
    "mig.mode.current",
    "pci.device_id",
)
SMI_QUERY = ["nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader,nounits"]
_FM_VERSION = re.compile(r"Fabric\s*Manager\s*version\s*is\s*:\s*([0-9][0-9.]*)", re.IGNORECASE)
#: ``lspci -n -d 10de:``: NVIDIA's PCI devices, numeric (works before any driver is installed)
LSPCI_NVIDIA = ["lspci", "-n", "-d", "10de:"]
#: NVSwitch chips enumerate as NVIDIA devices of PCI class 0x0680 ("bridge: other");
#: GPUs are 0x0302 (3D controller) or 0x0300 (VGA).
NVSWITCH_CLASS = "0680"
GPU_CLASSES = ("0300", "0302")
_LSPCI_LINE = re.compile(r"^(\S+)\s+([0-9a-fA-F]{4}):\s+10de:([0-9a-fA-F]{4})", re.MULTILINE)
SYSFS_PCI = Path("/sys/bus/pci/devices")
#: NVML's GPU fabric states (nvmlDeviceGetGpuFabricInfo, Hopper and later)
FABRIC_STATES = {0: "not supported", 1: "not started", 2: "in progress", 3: "completed"}
_SMI_HEADER = re.compile(r"Driver Version:\s*([0-9.]+)\s+CUDA Version:\s*([0-9.]+)")
#: a GPU's first row in the ``nvidia-smi`` table: ``| <index> <name> <persistence> |
#: <bus id> <display> | <volatile uncorrected ECC errors> |``
_SMI_GPU_ROW = re.compile(
    r"^\|\s*(\d+)\s+.*\|\s*[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]\s+\S+"
    r"\s*\|\s*(\S+)\s*\|\s*$",
    re.MULTILINE,
)


@dataclass
class GpuInfo:
    """One GPU as the driver reports it."""

    index: int
    name: str
    uuid: str
    memory_mib: int | None
    power_limit_w: float | None
    mig_mode: str | None
    pci_device_id: str | None
    #: ``Enabled`` / ``Disabled``: the ECC mode the GPU runs in now; None: unknown or no ECC
    ecc_mode: str | None = None


@dataclass
class HostRecord:
    """Everything probed on the host; ``errors`` says which probes could not answer."""

    gpu_source: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    gpus: list[GpuInfo] = field(default_factory=list)
    fabric_manager_version: str | None = None
    fabric_manager_active: bool | None = None
    docker_reachable: bool | None = None
    docker_version: str | None = None
    docker_runtimes: list[str] = field(default_factory=list)
    cpu_model: str | None = None
    cpu_sockets: int | None = None
    cpu_cores_per_socket: int | None = None
    cpu_threads_per_core: int | None = None
    memory_kib: int | None = None
    #: NVSwitch devices on the PCI bus (``address 10de:<device>``); None: the bus was not read
    nvswitches: list[str] | None = None
    nvswitch_source: str | None = None
    #: per GPU, NVML's fabric state ("not supported" on boards without an NVLink fabric)
    fabric_states: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def gpu_names(self) -> list[str]:
        """Distinct GPU names."""
        return sorted({g.name for g in self.gpus})

    @property
    def needs_fabric_manager(self) -> bool:
        """NVSwitch systems need the fabric manager: decided from hardware, never names.

        NVML names HGX boards' GPUs "NVIDIA H100 80GB HBM3" or "NVIDIA H200" (no "SXM"), so
        the PCI bus decides (NVSwitch chips, also before a driver exists); without it, NVML's
        fabric state (any GPU that has a fabric to join).
        """
        if self.nvswitches is not None:
            return bool(self.nvswitches)
        if self.fabric_states:
            return any(state != "not supported" for state in self.fabric_states)
        # undecided: with GPUs to serve, the check runs (absence of evidence is no evidence)
        return bool(self.gpus)

    @property
    def fabric_manager_reason(self) -> str:
        """Why the fabric manager is or is not needed, from the facts that decided it."""
        if self.nvswitches is not None:
            where = self.nvswitch_source or "the PCI bus"
            if self.nvswitches:
                ids = sorted({n.split()[-1] for n in self.nvswitches})
                return f"{len(self.nvswitches)} NVSwitch device(s) on {where} ({', '.join(ids)})"
            return f"no NVSwitch on {where}"
        if self.fabric_states:
            return (
                f"PCI bus not read; NVML fabric state: {', '.join(sorted(set(self.fabric_states)))}"
            )
        if self.gpus:
            return (
                "could not be decided (no usable PCI listing and no NVML fabric facts): "
                "checking the fabric manager"
            )
        return "PCI bus not read and no GPU seen: nothing needs a fabric manager"

    @property
    def fabric_manager_matches_driver(self) -> bool:
        """Fabric manager and driver versions are equal (or no fabric manager is needed)."""
        if not self.needs_fabric_manager:
            return True
        return self.fabric_manager_version is not None and (
            self.fabric_manager_version == self.driver_version
        )

    @property
    def mig_enabled(self) -> bool:
        """Any GPU in MIG mode."""
        return any((g.mig_mode or "").lower() == "enabled" for g in self.gpus)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the derived facts."""
        data = asdict(self)
        data["gpu_count"] = len(self.gpus)
        data["needs_fabric_manager"] = self.needs_fabric_manager
        data["fabric_manager_reason"] = self.fabric_manager_reason
        data["mig_enabled"] = self.mig_enabled
        return data


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_smi_csv(text: str) -> list[GpuInfo]:
    """Parse ``nvidia-smi --query-gpu=<SMI_FIELDS> --format=csv,noheader,nounits`` output."""
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(SMI_FIELDS):
            raise ValueError(
                f"nvidia-smi CSV line has {len(cells)} fields, expected {len(SMI_FIELDS)}: {line!r}"
            )
        values = dict(zip(SMI_FIELDS, cells, strict=True))
        memory = _num(values["memory.total"])
        gpus.append(
            GpuInfo(
                index=int(values["index"]),
                name=values["name"],
                uuid=values["uuid"],
                memory_mib=int(memory) if memory is not None else None,
                power_limit_w=_num(values["power.limit"]),
                mig_mode=None
                if values["mig.mode.current"] in ("[N/A]", "N/A")
                else values["mig.mode.current"],
                pci_device_id=values["pci.device_id"],
            )
        )
    return gpus


def smi_driver_versions(smi_csv: str, smi_table: str | None) -> tuple[str | None, str | None]:
    """Driver version from the CSV (every GPU reports it); CUDA version from the table header."""
    driver = None
    for line in smi_csv.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) == len(SMI_FIELDS):
            driver = cells[SMI_FIELDS.index("driver_version")]
            break
    cuda = None
    if smi_table:
        match = _SMI_HEADER.search(smi_table)
        if match:
            driver = driver or match.group(1)
            cuda = match.group(2)
    return driver, cuda


def smi_ecc_modes(smi_table: str) -> dict[int, str | None]:
    """Each GPU's ECC mode from the ``nvidia-smi`` table's "Volatile Uncorr. ECC" column:
    a count of errors when ECC is on (``Enabled``), ``Off`` when it is off (``Disabled``),
    ``N/A`` when the GPU has no ECC (None)."""
    modes: dict[int, str | None] = {}
    for match in _SMI_GPU_ROW.finditer(smi_table):
        cell = match.group(2)
        modes[int(match.group(1))] = (
            "Enabled" if cell.isdigit() else "Disabled" if cell == "Off" else None
        )
    return modes


def parse_lscpu(text: str) -> dict[str, str]:
    """``lscpu`` output as a dict of its ``Key: value`` lines."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


def parse_meminfo_kib(text: str) -> int | None:
    """``MemTotal`` from /proc/meminfo, in KiB."""
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def parse_fabric_manager_version(text: str) -> str | None:
    """``Fabric Manager version is : 550.127.05`` → ``550.127.05``."""
    match = _FM_VERSION.search(text)
    return match.group(1) if match else None


def parse_lspci_nvidia(text: str) -> list[tuple[str, str, str]]:
    """NVIDIA devices in ``lspci -n -d 10de:`` output: ``(address, class, device)`` each."""
    return [(m.group(1), m.group(2), m.group(3).lower()) for m in _LSPCI_LINE.finditer(text)]


def parse_lspci_nvswitches(text: str) -> list[str]:
    """NVSwitch devices in ``lspci -n -d 10de:`` output: ``<address> 10de:<device>`` each."""
    return _switches(parse_lspci_nvidia(text))


def _switches(devices: list[tuple[str, str, str]]) -> list[str]:
    return [f"{addr} 10de:{dev}" for addr, klass, dev in devices if klass == NVSWITCH_CLASS]


def sysfs_nvidia(root: Path = SYSFS_PCI) -> list[tuple[str, str, str]] | None:
    """NVIDIA devices in sysfs ``(address, class, device)``; None when the bus cannot be read."""
    try:
        devices = sorted(root.iterdir())
    except OSError:
        return None
    found = []
    for dev in devices:
        try:
            vendor = (dev / "vendor").read_text().strip().lower()
            klass = (dev / "class").read_text().strip().lower()
            device = (dev / "device").read_text().strip().lower().removeprefix("0x")
        except OSError:
            continue
        if vendor == "0x10de":
            found.append((dev.name, klass.removeprefix("0x")[:4], device))
    return found


def sysfs_nvswitches(root: Path = SYSFS_PCI) -> list[str] | None:
    """The same from sysfs (no lspci installed); None when the bus cannot be read."""
    found = sysfs_nvidia(root)
    return None if found is None else _switches(found)


def probe_nvswitches(record: HostRecord, runner: Runner, sysfs: Path = SYSFS_PCI) -> None:
    """NVSwitch chips on the PCI bus, from ``lspci`` or else sysfs, into ``record``.

    A listing that shows none of the GPUs NVML (or nvidia-smi) reports is incomplete (a
    container, a restricted sysfs): it decides nothing, and ``record.nvswitches`` stays None
    so NVML's fabric state decides, or nobody and the fabric manager check runs.
    """
    lspci = runner(LSPCI_NVIDIA)
    devices: list[tuple[str, str, str]] | None
    if lspci.ok:
        devices, source = parse_lspci_nvidia(lspci.stdout), "the PCI bus (lspci)"
    else:
        record.errors.append(f"lspci: {(lspci.stderr or lspci.stdout).strip() or 'failed'}")
        devices, source = sysfs_nvidia(sysfs), f"the PCI bus ({sysfs})"
    if devices is None:
        return
    listed_gpus = [d for d in devices if d[1] in GPU_CLASSES]
    if record.gpus and not listed_gpus:
        record.errors.append(
            f"{source} lists no NVIDIA GPU while {record.gpu_source or 'the driver'} reports "
            f"{len(record.gpus)}: the listing is incomplete and decides nothing about NVSwitch"
        )
        return
    record.nvswitches = _switches(devices)
    record.nvswitch_source = source


def probe_nvml(nvml: Any) -> tuple[str, str | None, list[GpuInfo]]:
    """Read driver, CUDA and GPUs through NVML (``pynvml`` from nvidia-ml-py)."""
    nvml.nvmlInit()
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        cuda_raw = nvml.nvmlSystemGetCudaDriverVersion_v2()
        cuda = f"{cuda_raw // 1000}.{(cuda_raw % 1000) // 10}" if cuda_raw else None
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            try:
                current, _pending = nvml.nvmlDeviceGetMigMode(handle)
                mig: str | None = "Enabled" if current else "Disabled"
            except nvml.NVMLError:
                mig = None
            try:
                power: float | None = nvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000.0
            except nvml.NVMLError:
                power = None
            try:  # [current, pending]; NotSupported on GPUs without ECC memory
                ecc_now, _ecc_pending = nvml.nvmlDeviceGetEccMode(handle)
                ecc: str | None = "Enabled" if ecc_now == nvml.NVML_FEATURE_ENABLED else "Disabled"
            except nvml.NVMLError:
                ecc = None
            pci = nvml.nvmlDeviceGetPciInfo(handle)
            gpus.append(
                GpuInfo(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                    memory_mib=int(nvml.nvmlDeviceGetMemoryInfo(handle).total // (1024 * 1024)),
                    power_limit_w=power,
                    mig_mode=mig,
                    pci_device_id=f"0x{pci.pciDeviceId:08X}",
                    ecc_mode=ecc,
                )
            )
        return driver, cuda, gpus
    finally:
        nvml.nvmlShutdown()


def probe_fabric(nvml: Any, count: int) -> list[str]:
    """NVML's fabric state per GPU; empty when this NVML cannot say (before Hopper)."""
    states = []
    try:
        nvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no fabric facts
        return []
    try:
        for index in range(count):
            info = nvml.nvmlDeviceGetGpuFabricInfo(nvml.nvmlDeviceGetHandleByIndex(index))
            states.append(FABRIC_STATES.get(int(info.state), f"state {int(info.state)}"))
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported, or an older pynvml
        return []
    finally:
        nvml.nvmlShutdown()
    return states


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _load_nvml() -> Any:
    import pynvml

    return pynvml


def probe_host(
    runner: Runner = run_command,
    nvml_loader: Callable[[], Any] = _load_nvml,
    docker_client: Callable[[], Any] | None = None,
    want_gpus: bool = True,
    sysfs: Path = SYSFS_PCI,
) -> HostRecord:
    """Probe everything; a probe that cannot answer is recorded in ``errors``, never guessed."""
    record = HostRecord()
    probe_cpu(record, runner)
    if want_gpus:
        _probe_gpus(record, runner, nvml_loader)
        probe_nvswitches(record, runner, sysfs)
        fm = runner(["nv-fabricmanager", "--version"])
        if fm.returncode is None:
            record.errors.append("nv-fabricmanager: not installed")
        else:
            record.fabric_manager_version = parse_fabric_manager_version(fm.stdout + fm.stderr)
            state = runner(["systemctl", "is-active", "nvidia-fabricmanager"])
            record.fabric_manager_active = (
                state.stdout.strip() == "active" if state.returncode is not None else None
            )
    _probe_docker(record, docker_client)
    return record


def probe_cpu(record: HostRecord, runner: Runner = run_command) -> None:
    """CPU model/sockets/cores (``lscpu``) and memory (/proc/meminfo) into ``record``."""
    lscpu = runner(["lscpu"])
    if lscpu.ok:
        fields = parse_lscpu(lscpu.stdout)
        record.cpu_model = fields.get("Model name")
        for attr, key in (
            ("cpu_sockets", "Socket(s)"),
            ("cpu_cores_per_socket", "Core(s) per socket"),
            ("cpu_threads_per_core", "Thread(s) per core"),
        ):
            if fields.get(key, "").isdigit():
                setattr(record, attr, int(fields[key]))
    meminfo = runner(["cat", "/proc/meminfo"])
    if meminfo.ok:
        record.memory_kib = parse_meminfo_kib(meminfo.stdout)


def has_gpus(runner: Runner = run_command) -> bool:
    """A quick check for ``--mlperf-backend=auto``: does NVML or nvidia-smi list a GPU?"""
    record = HostRecord()
    _probe_gpus(record, runner, _load_nvml)
    return bool(record.gpus)


def _probe_gpus(record: HostRecord, runner: Runner, nvml_loader: Callable[[], Any]) -> None:
    try:
        nvml = nvml_loader()
        record.driver_version, record.cuda_version, record.gpus = probe_nvml(nvml)
        record.gpu_source = "nvml"
        record.fabric_states = probe_fabric(nvml, len(record.gpus))
        return
    except Exception as exc:  # noqa: BLE001 - any NVML failure means: use nvidia-smi
        record.errors.append(f"NVML: {exc}")
    csv = runner(SMI_QUERY)
    if not csv.ok:
        record.errors.append(f"nvidia-smi: {(csv.stderr or csv.stdout).strip() or 'failed'}")
        return
    try:
        record.gpus = parse_smi_csv(csv.stdout)
    except ValueError as exc:
        record.errors.append(f"nvidia-smi: {exc}")
        return
    table = runner(["nvidia-smi"])
    record.driver_version, record.cuda_version = smi_driver_versions(
        csv.stdout, table.stdout if table.ok else None
    )
    ecc = smi_ecc_modes(table.stdout) if table.ok else {}
    for gpu in record.gpus:
        gpu.ecc_mode = ecc.get(gpu.index)
    record.gpu_source = "nvidia-smi"


def _probe_docker(record: HostRecord, docker_client: Callable[[], Any] | None) -> None:
    try:
        if docker_client is None:
            import docker

            client = docker.from_env()
        else:
            client = docker_client()
        info = client.info()
    except Exception as exc:  # noqa: BLE001 - unreachable engine, any reason
        record.docker_reachable = False
        record.errors.append(f"docker: {exc}")
        return
    record.docker_reachable = True
    record.docker_version = str(info.get("ServerVersion"))
    record.docker_runtimes = sorted((info.get("Runtimes") or {}).keys())
