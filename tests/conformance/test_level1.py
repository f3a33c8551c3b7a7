"""Level 1: the backend's detection, generated definitions and config resolution replayed
against NVIDIA's real v4.1 code on three machine profiles (see level1_harness.py).

Runs only with a real checkout (PYTEST_MLPERF_REAL_NVIDIA); skipped otherwise, by design.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mlperf.backends.nvidia.dryrun import DryItem, dry_run, format_rows
from pytest_mlperf.backends.nvidia.engines import HarnessEngines
from pytest_mlperf.backends.nvidia.resolve import CUSTOM_VAR, RESOLVED
from tests.conformance.level1_harness import PROFILES, ProfileBox, real_setup

PAIRS = [
    ("bert", "Offline"),
    ("bert", "Server"),
    ("bert", "SingleStream"),
    ("3d-unet", "Offline"),
    ("3d-unet", "SingleStream"),
]
CONFIG_VERS = ("default", "high_accuracy")
MODES = ("performance", "accuracy")
TEST_MODES = {"performance": "PerformanceOnly", "accuracy": "AccuracyOnly"}
#: what each profile can run; everything else must be skipped with the harness's reason
EXPECTED = {
    # built-in; NVIDIA has no 8-GPU SingleStream config and our data has no H200
    "dgx-h200": ("H200_SXM_141GBx8", {p for p in PAIRS if p[1] != "SingleStream"}),
    # unknown to v4.1 (its H100x8 pins a Xeon 8480C): our custom system and configs
    "hgx-h100-epyc9654": ("H100_SXM_80GBx8_PytestMlperf", set(PAIRS)),
    # built-in (A100x8 allows any x86 CPU); NVIDIA's bert Offline, ours for the rest
    "azure-nd96asr-v4": ("A100_SXM4_40GBx8", set(PAIRS)),
}


@pytest.mark.parametrize("profile", PROFILES)
def test_level1_profile(profile: str, tmp_path: Path) -> None:
    checkout, python, kit, pythonpath = real_setup()
    box = ProfileBox(checkout, python, kit, pythonpath, profile)
    progress: list[str] = []
    engines = HarnessEngines(box, str(tmp_path), ["level1", profile], progress.append)  # type: ignore[arg-type]
    system_id = engines.detect()
    expected_id, runnable = EXPECTED[profile]
    assert system_id == expected_id
    items = [DryItem(b, s, cv, m) for b, s in PAIRS for cv in CONFIG_VERS for m in MODES]
    rows = dry_run(engines, items, "--test_run")  # raises on an error or a silent skip
    print(f"== {profile}")
    print("\n".join(progress + format_rows(rows)))
    for (b, s, cv), res in engines.resolutions.items():
        if (b, s) in runnable:
            assert res.status == RESOLVED, (b, s, cv, res.message)
            answers = engines.answers[(b, s, cv)]
            assert [a.action for a in answers] == ["generate_engines", "run_harness", "run_harness"]
            for mode, run in zip(MODES, answers[1:], strict=True):
                assert run.status == RESOLVED
                assert run.config["test_mode"] == TEST_MODES[mode]
                assert run.config["test_run"] is True
                assert run.config["config_ver"] == res.config["config_ver"]
            assert res.config["config_ver"] == (
                "custom_k_99_MaxP" if cv == "default" else "custom_k_99_9_MaxP"
            )
        else:
            assert res.status != RESOLVED and "No registered config" in res.message, res
    # the custom definition path only where needed, and then complete
    for argv, env in box.calls:
        if CUSTOM_VAR in env:
            root = Path(env[CUSTOM_VAR])
            assert (root / "custom_systems" / "custom_list.py").is_file(), argv
    if engines.custom_system is None:
        detections = [env for argv, env in box.calls if "scripts.get_system_id" in argv]
        assert detections and all(CUSTOM_VAR not in env for env in detections)
