"""Preflight doctor: captured GPU-host outputs (tests/data/host) and a real run on this machine."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf import cli
from pytest_mlperf.checks import FAIL, OK, STATUS_WORDS, WARN, Check
from pytest_mlperf.doctor import (
    DoctorInput,
    diagnose,
    doctor_table,
    exit_code,
    gpu_architecture,
    load_preflight,
    run_doctor,
)
from pytest_mlperf.errors import DataError
from pytest_mlperf.host.probe import GpuInfo, HostRecord
from tests.test_host import HOST, LSPCI, FakeHost, no_nvml

GB = 10**9
BOTH = ("bert", "3d-unet")


class Engine:
    def __init__(self, runtimes: Sequence[str] = ("nvidia", "runc"), **extra: Any) -> None:
        self.data = {
            "ServerVersion": "24.0.7",
            "Runtimes": {r: {} for r in runtimes},
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            **extra,
        }

    def info(self) -> dict[str, Any]:
        return self.data


def gpu_host(csv: str = "a100x8.csv", fm: str | None = "fabricmanager-550.127.05.txt") -> FakeHost:
    lspci = LSPCI.get(csv)
    return FakeHost(
        {
            ("lspci",): None if lspci is None else (HOST / lspci).read_text(),
            ("nvidia-smi", "--query-gpu"): (HOST / csv).read_text(),
            ("nvidia-smi",): (HOST / "nvidia-smi-a100x8.txt").read_text(),
            ("nv-fabricmanager",): None if fm is None else (HOST / fm).read_text(),
            ("systemctl", "is-active"): "active\n",
            ("lscpu",): (HOST / "lscpu-epyc.txt").read_text(),
            ("cat", "/proc/meminfo"): (HOST / "meminfo.txt").read_text(),
        }
    )


def doctor(
    tmp_path: Path,
    *,
    csv: str = "a100x8.csv",
    fm: str | None = "fabricmanager-550.127.05.txt",
    engine: Engine | None = None,
    free_gb: float = 500,
    env: Mapping[str, str] | None = None,
    backend: str = "nvidia",
    families: tuple[str, ...] = BOTH,
) -> dict[str, Check]:
    inp = DoctorInput(families, backend, scratch_path=tmp_path / "scratch", cache_dir=tmp_path)
    lines = run_doctor(
        inp,
        runner=gpu_host(csv, fm),
        nvml_loader=no_nvml,
        docker_client=lambda: engine or Engine(),
        env=env or {},
        disk_free=lambda _path: int(free_gb * GB),
    )
    return {line.name: line for line in lines}


def verdicts(lines: Mapping[str, Check]) -> dict[str, str]:
    return {name: line.status for name, line in lines.items()}


def test_ready_a100x8_host_passes_every_check(tmp_path: Path) -> None:
    lines = doctor(tmp_path)
    assert set(verdicts(lines).values()) == {OK}, verdicts(lines)
    assert exit_code(list(lines.values())) == 0
    assert "A100-SXM4-40GBx8" in lines["system"].value
    assert "the harness's own detection decides" in lines["system"].value
    assert "Ampere (sm 8.0)" in lines["gpu-architecture"].value
    assert "550.127.05 = driver 550.127.05" in lines["fabric-manager"].value
    assert "driver 550.127.05, CUDA 12.4" in lines["gpus"].value
    table = doctor_table(list(lines.values()))
    assert table[1].split() == ["check", "verdict", "found", "fix"]
    assert table[-1] == "doctor: 0 failed (-), 0 warning(s) (-)"


def test_disk_needs_the_data_sizes_and_skips_what_is_present(tmp_path: Path) -> None:
    data = load_preflight()
    need = {f: sum(p["gb"] for p in data["benchmarks"][f]["scratch"]) for f in data["benchmarks"]}
    lines = doctor(tmp_path, free_gb=need["bert"] + need["3d-unet"] - 1)
    disk = lines["disk"]
    assert disk.status == FAIL and exit_code(list(lines.values())) == 1
    assert f"needs ~{need['bert'] + need['3d-unet']:.1f} GB" in disk.value
    assert "KiTS19 imaging" in disk.value and "--mlperf-scratch-path" in disk.fix
    # bert alone fits; and downloaded KiTS19 data is not counted again
    assert doctor(tmp_path, free_gb=need["bert"] + 1, families=("bert",))["disk"].status == OK
    (tmp_path / "scratch" / "data" / "KiTS19").mkdir(parents=True)
    (tmp_path / "scratch" / "preprocessed_data" / "KiTS19").mkdir(parents=True)
    assert doctor(tmp_path, free_gb=need["bert"] + need["3d-unet"] - 1)["disk"].status == OK


def test_fabric_manager_behind_the_driver_fails_with_the_package(tmp_path: Path) -> None:
    fm = doctor(tmp_path, fm="fabricmanager-550.90.07.txt")["fabric-manager"]
    assert fm.status == FAIL
    assert "550.90.07 ≠ driver 550.127.05" in fm.value
    assert "cuda-drivers-fabricmanager-550=550.127.05-1" in fm.fix


def test_unknown_system_and_missing_runtime(tmp_path: Path) -> None:
    lines = doctor(tmp_path, csv="h100-pcie-x1.csv", fm=None, engine=Engine(["runc"]))
    # only the harness's own detection (GPUs and host CPU) can say; we warn what follows
    assert lines["system"].status == WARN
    assert "did not match any known systems" in lines["system"].value
    assert "benchmarks/systems/" in lines["system"].fix
    assert lines["gpu-architecture"].status == OK and "Hopper" in lines["gpu-architecture"].value
    assert lines["nvidia-runtime"].status == FAIL and "nvidia-ctk" in lines["nvidia-runtime"].fix


def test_benchmark_without_preflight_data_is_named_not_failed(tmp_path: Path) -> None:
    arch = doctor(tmp_path, families=("bert", "tiny"))["gpu-architecture"]
    assert arch.status == OK and arch.value.endswith("no preflight data for tiny")


def test_unsupported_gpu_architecture() -> None:
    data = load_preflight()
    assert gpu_architecture("Tesla V100-SXM2-16GB", data) == ("Volta", "7.0")
    assert gpu_architecture("NVIDIA A10", data) == ("Ampere", "8.6")
    assert gpu_architecture("NVIDIA A100-SXM4-40GB", data) == ("Ampere", "8.0")
    record = HostRecord(
        gpus=[GpuInfo(0, "Tesla V100-SXM2-16GB", "GPU-x", 16160, 300.0, None, None)],
        docker_reachable=True,
        docker_runtimes=["nvidia"],
    )
    lines = diagnose(
        DoctorInput(("bert",), "nvidia", scratch_path=Path("/x")),
        record,
        {},
        data,
        {},
        lambda _p: 10**15,
    )
    arch = {line.name: line for line in lines}["gpu-architecture"]
    assert arch.status == FAIL and "Volta" in arch.value and "bert needs Ampere" in arch.value


def test_rootless_docker_and_proxy_mismatch(tmp_path: Path) -> None:
    rootless = Engine(SecurityOptions=["name=seccomp,profile=builtin", "name=rootless"])
    env = {"https_proxy": "http://user:secret@proxy.example:3128", "NO_PROXY": "localhost"}
    lines = doctor(tmp_path, engine=rootless, env=env)
    assert lines["rootless-docker"].status == FAIL and "no-cgroups" in lines["rootless-docker"].fix
    proxy = lines["proxy"]
    assert proxy.status == WARN and "http-proxy.conf" in proxy.fix
    assert "HTTPS_PROXY=http://***@proxy.example:3128" in proxy.value
    assert "secret" not in proxy.value
    engine_proxy = Engine(HttpProxy="http://proxy.example:3128")
    assert doctor(tmp_path, engine=engine_proxy)["proxy"].status == WARN
    both = doctor(tmp_path, engine=engine_proxy, env={"HTTP_PROXY": "http://proxy.example:3128"})
    assert both["proxy"].status == OK


def test_gpu_problems_only_warn_when_the_run_uses_the_reference_backend(tmp_path: Path) -> None:
    lines = doctor(tmp_path, fm="fabricmanager-550.90.07.txt", backend="auto")
    assert lines["backend"].value.startswith("reference (auto: no --mlperf-harness-dir)")
    assert lines["fabric-manager"].status == WARN
    assert exit_code(list(lines.values())) == 0


def test_malformed_preflight_data_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "v4.1.json"
    raw = load_preflight()
    raw["benchmarks"]["bert"]["scratch"][0]["gb"] = "big"
    bad.write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"benchmarks/bert/scratch/0/gb"):
        load_preflight(path=bad)


def test_real_run_on_this_machine_no_gpu(pytester: pytest.Pytester) -> None:
    start = time.monotonic()
    result = pytester.runpytest_subprocess("--mlperf-doctor", "-p", "no:randomly")
    seconds = time.monotonic() - start
    out = result.stdout.str()
    assert "pytest-mlperf doctor" in out and ("no GPU" in out or "GPU(s)" in out)
    assert "collected" not in out  # nothing was collected or run
    assert seconds < 30
    if "no GPU" in out:  # this machine: the reference backend runs, GPU lines only warn
        assert result.ret == 0, out
        nvidia = pytester.runpytest_subprocess("--mlperf-doctor", "--mlperf-backend=nvidia")
        assert nvidia.ret == 1
        assert "FAIL" in nvidia.stdout.str() and "set --mlperf-scratch-path" in nvidia.stdout.str()


def test_console_doctor_json_and_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["doctor", "--benchmarks=bert", "--json"])
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)}
    assert set(checks) >= {"backend", "gpus", "system", "disk", "docker", "proxy"}
    assert code == (1 if any(c["verdict"] == STATUS_WORDS[FAIL] for c in checks.values()) else 0)
    assert cli.main(["doctor", "--benchmarks=bogus"]) == 2
    err = capsys.readouterr().err
    assert "'bogus'" in err and "bert-99" in err


@pytest.mark.parametrize(
    ("csv", "fm", "verdict", "found"),
    [
        # an HGX H100 board: NVML names it "NVIDIA H100 80GB HBM3"; its NVSwitches decide
        ("h100x8.csv", None, FAIL, "not installed, but this NVSwitch system needs it (4 NVSwitch"),
        ("h100x8.csv", "fabricmanager-550.90.07.txt", OK, "fabric manager 550.90.07 = driver"),
        # a single H200: no NVSwitch on the PCI bus, so nothing to check (and not for its name)
        ("h200-x1.csv", None, OK, "not needed: no NVSwitch on the PCI bus (lspci)"),
    ],
)
def test_fabric_manager_check_follows_the_nvswitch_hardware(
    tmp_path: Path, csv: str, fm: str | None, verdict: str, found: str
) -> None:
    line = doctor(tmp_path, csv=csv, fm=fm)["fabric-manager"]
    assert line.status == verdict and line.value.startswith(found), line.value
