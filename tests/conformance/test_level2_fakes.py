"""Level 2's own fakes, without NVIDIA's code (these run everywhere, CI too): the fake harness
binary parses NVIDIA's command line, runs the real LoadGen from the two config files, and
refuses a missing engine, as test_level2.py relies on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_mlperf.results.loadgen import parse_dir
from tests.conformance.level2.fake_harness import parse_flags

FAKE = Path(__file__).parent / "level2" / "fake_harness.py"


def test_flags_as_nvidia_passes_them() -> None:
    # the shape NVIDIA's run_harness printed (code/common/harness.py, args_to_string + custom)
    flags = parse_flags(
        [
            "--logfile_outdir=/x/bert-99/Offline",
            "--use_graphs=false",
            "--gpu_engines=./a.plan",
            "--scenario",
            "Offline",
            "--model",
            "bert",
        ]
    )
    assert flags == {
        "logfile_outdir": "/x/bert-99/Offline",
        "use_graphs": "false",
        "gpu_engines": "./a.plan",
        "scenario": "Offline",
        "model": "bert",
    }


def run_fake(tmp_path: Path, engine: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "mlperf.conf").write_text(
        "bert.Offline.min_query_count = 3\n*.*.qsl_rng_seed = 3066443479025735752\n"
    )
    (tmp_path / "user.conf").write_text(
        "*.Offline.target_qps = 5000\n*.Offline.min_duration = 60000\n"
    )
    argv = [
        sys.executable,
        str(FAKE),
        f"--logfile_outdir={tmp_path / 'logs'}",
        "--logfile_prefix=mlperf_log_",
        "--performance_sample_count=10833",
        "--test_mode=PerformanceOnly",
        f"--gpu_engines={engine}",
        f"--mlperf_conf_path={tmp_path / 'mlperf.conf'}",
        f"--user_conf_path={tmp_path / 'user.conf'}",
        "--scenario",
        "Offline",
        "--model",
        "bert",
    ]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=300, env=dict(os.environ, **env), check=False
    )


def test_runs_real_loadgen_from_the_config_files_with_the_kit_overrides(tmp_path: Path) -> None:
    engine = tmp_path / "e.plan"
    engine.write_text("fake plan\n")
    done = run_fake(tmp_path, engine, REALNV_LG_MIN_DURATION_MS="500", REALNV_LG_MAX_QPS="200")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kit LoadGen overrides min_duration_ms=500, offline_expected_qps=200" in done.stdout
    parsed = parse_dir(tmp_path / "logs")
    # user.conf's 60 s were replaced; the answers paced at 200 samples/s meet the 0.5 s
    assert parsed.result_validity == "VALID", [r.message for r in parsed.invalid_reasons]
    detail = (tmp_path / "logs" / "mlperf_log_detail.txt").read_text()
    assert '"key": "requested_min_duration_ms", "value": 500' in detail
    assert '"key": "requested_offline_expected_qps", "value": 200' in detail
    # the checkout's mlperf.conf is read (LoadGen's built-in one says 10833 for bert Offline),
    # with its RNG seeds (v4.1's; LoadGen 6's own differ)
    assert '"key": "requested_min_query_count", "value": 3' in detail
    assert '"key": "requested_qsl_rng_seed", "value": 3066443479025735752' in detail


def test_a_missing_engine_fails_as_the_real_harness_would(tmp_path: Path) -> None:
    done = run_fake(tmp_path, tmp_path / "absent.plan")
    assert done.returncode == 1
    assert "absent.plan does not exist" in done.stderr
    assert not (tmp_path / "logs").exists()
