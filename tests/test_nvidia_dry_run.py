"""``--mlperf-dry-run`` on the nvidia backend, against the stand-in harness (Docker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.standin import calls, make_harness, set_conf, standin_args

pytestmark = pytest.mark.usefixtures("docker_client")

AZURE_A100 = {
    "gpu_name": "NVIDIA A100-SXM4-40GB",
    "gpu_count": "8",
    "cpu_name": "AMD EPYC 7V12 64-Core Processor",
}
ALL = ["--mlperf-benchmarks=bert,3d-unet", "--mlperf-mode=all", "--mlperf-fast"]


def _image(pytester: pytest.Pytester, harness: Path) -> None:
    """A first session builds the image (the dry run builds nothing, not even that)."""
    first = pytester.runpytest(*standin_args(pytester, harness), "--mlperf-scenarios=Offline")
    assert first.ret == 0, first.stdout.str()[-2000:]


def test_dry_run_names_each_items_config_engine_and_command(
    docker_client: Any, pytester: pytest.Pytester, standin_logs: Path
) -> None:
    harness = make_harness(pytester.path, standin_logs, **AZURE_A100)
    _image(pytester, harness)
    before = calls(harness)
    result = pytester.runpytest(
        *standin_args(pytester, harness),
        *ALL,
        "--mlperf-config-ver=high_accuracy",
        "--mlperf-dry-run",
    )
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    assert calls(harness) == before  # no harness step, no engine build, no run
    # NVIDIA's own config where v4.1 has one (A100x8 bert Offline), ours elsewhere
    assert "bert SingleStream accuracy high_accuracy: KnownSystem.A100_SXM4_40GBx8" in out
    assert "config: configs.bert.Offline.A100_SXM4_40GBx8 (the harness own)" in out
    assert "config: custom_configs.3d-unet.Offline.custom.A100_SXM4_40GBx8 (generated: " in out
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
    _image(pytester, harness)
    set_conf(harness, no_configs="bert/Server")
    result = pytester.runpytest(*standin_args(pytester, harness), "--mlperf-dry-run")
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
