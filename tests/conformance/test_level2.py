"""Level 2 conformance: the project itself, ``pytest --mlperf-backend=nvidia`` as docs/nvidia.md
says, against NVIDIA's REAL v4.1 checkout in Docker, on the kit's DGX H200 profile.

The real Makefiles and ``python3 -m code.main`` run in the container for system detection,
``make link_dirs``, ``make generate_engines`` and ``make run_harness``; only GPU-bound pieces are
fakes (docs/conformance.md): the kit's nvidia-smi/lscpu/cuda stubs and TensorRT build (the plan
file is written where NVIDIA's builder code puts it), and ``level2/fake_harness.py`` as
``build/bin/harness_bert`` / ``harness_3dunet`` driving the real mlperf_loadgen, so NVIDIA's
own ``run_harness`` parses real LoadGen logs and writes its ``metadata.json``.

Runs only when given (never in CI: NVIDIA's code is not part of the project, by design):
``PYTEST_MLPERF_REAL_NVIDIA`` (an extracted closed/NVIDIA with build/inference, the kit's
extract.sh) and ``PYTEST_MLPERF_REAL_NVIDIA_IMAGE`` (the image ``level2/make_image.sh`` built).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.backends.nvidia.harness import harness_commit

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
#: where make_image.sh puts our fake harness binary in the image
FAKE_HARNESS = "/opt/realnv/l2/fake_harness.py"
#: ... and the empty TensorRT plugin libraries 3d-unet loads (level2/fake_plugins.sh)
FAKE_PLUGINS = "/opt/realnv/l2/plugins"
#: the staged steps this level does not run for real (network downloads of data and models,
#: NVIDIA's tokenizer/preprocessing of them, and `make build`'s git clones + CUDA compile);
#: their outputs that the run needs are staged instead (harness binaries, plugins, build/inference)
PRESTAGED = ("download_data", "download_model", "preprocess_data")
ITEMS = (("bert", "Offline"), ("bert", "Server"), ("3d-unet", "Offline"))


def real_level2() -> tuple[Path, str]:
    """(checkout, image), or skip: no real checkout was given (by design, not a missing
    service: the real code is never in CI)."""
    checkout = os.environ.get("PYTEST_MLPERF_REAL_NVIDIA")
    image = os.environ.get("PYTEST_MLPERF_REAL_NVIDIA_IMAGE")
    if not checkout or not image:
        pytest.skip(
            "no real NVIDIA checkout/image: set PYTEST_MLPERF_REAL_NVIDIA and "
            "PYTEST_MLPERF_REAL_NVIDIA_IMAGE (docs/conformance.md)"
        )
    path = Path(checkout)
    if not (path / "code" / "main.py").is_file() or not (path / "build" / "inference").is_dir():
        pytest.fail(
            f"PYTEST_MLPERF_REAL_NVIDIA={checkout}: needs code/main.py and build/inference "
            "(closed/NVIDIA as the kit's extract.sh writes it, with INFERENCE_GITDIR)"
        )
    return path, image


def stage(checkout: Path, scratch: Path) -> None:
    """What the pre-staged steps would have left: markers, harness binaries, build/inference.

    The backend mounts ``<scratch>/.pytest-mlperf/build/<hash of the checkout path>`` as the
    checkout's ``build/`` (backend.py ``_build_dir``) and skips a step whose marker exists
    (``_stages``); ``link_dirs`` and everything after it run for real.
    """
    commit = harness_commit(checkout)[:16]
    key = hashlib.sha256(str(checkout.resolve()).encode()).hexdigest()[:12]
    base = scratch.resolve() / ".pytest-mlperf"
    build = base / "build" / key
    (build / "bin").mkdir(parents=True)
    for exe in ("harness_bert", "harness_3dunet"):
        (build / "bin" / exe).symlink_to(FAKE_HARNESS)
    (build / "plugins").symlink_to(FAKE_PLUGINS)
    shutil.copytree(checkout / "build" / "inference", build / "inference")
    steps = base / "steps" / commit
    steps.mkdir(parents=True)
    for step in PRESTAGED:
        for family in ("bert", "3d-unet"):
            (steps / f"{step}-{family}.done").touch()
    (base / "steps" / f"{commit}-{key}").mkdir(parents=True)
    (base / "steps" / f"{commit}-{key}" / "build.done").touch()


def session(checkout: Path, image: str, scratch: Path, out: Path, *extra: str) -> tuple[int, str]:
    """One ``pytest --mlperf-backend=nvidia`` session over the three items, in ``out``."""
    out.mkdir()
    (out / "conftest.py").write_text("")
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--mlperf-backend=nvidia",
        f"--mlperf-harness-dir={checkout}",
        f"--mlperf-scratch-path={scratch}",
        f"--mlperf-image={image}",
        "--mlperf-devices=none",
        "--mlperf-benchmarks=bert-99,3d-unet-99",
        # bert Offline, Server; 3d-unet Offline (a 3d-unet Server is a usage error)
        "-k",
        "Offline or Server",
        "--mlperf-mode=performance",
        "--mlperf-fast",
        f"--mlperf-results-dir={out / 'mlperf-results'}",
        *extra,
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        argv, cwd=out, capture_output=True, text=True, env=env, timeout=3000, check=False
    )
    (out / "session.txt").write_text(done.stdout + done.stderr)
    return done.returncode, done.stdout + done.stderr


def results(out: Path) -> dict[str, Any]:
    found = sorted((out / "mlperf-results").glob("*/results.json"))
    assert len(found) == 1, found
    data: dict[str, Any] = json.loads(found[0].read_text())
    return data


def engine_actions(data: dict[str, Any]) -> dict[tuple[str, str], str]:
    engines = data.get("host", {}).get("engines") or []
    return {(e["benchmark"], e["scenario"]): e["action"] for e in engines}


@pytest.fixture
def our_containers(tmp_path: Path) -> Iterator[None]:
    """Remove, afterwards, the harness containers the sessions launched (their mounts lie in
    ``tmp_path``); the backend leaves them running for reuse."""
    yield
    import docker

    client = docker.from_env()
    for container in client.containers.list(
        all=True, filters={"label": "pytest-mlperf.managed=true"}
    ):
        mounts = container.attrs.get("Mounts") or []
        if any(str(m.get("Source", "")).startswith(str(tmp_path)) for m in mounts):
            container.remove(force=True)


def test_bert_and_3d_unet_end_to_end_engine_built_once_then_reused(
    tmp_path: Path, our_containers: None
) -> None:
    source, image = real_level2()
    checkout = tmp_path / "closed" / "NVIDIA"
    shutil.copytree(source, checkout, symlinks=True)
    scratch = tmp_path / "scratch"
    stage(checkout, scratch)

    # the dry run first: NVIDIA's own detection and config resolution name each item's
    # config, engine and command, and nothing is built
    started = time.monotonic()
    rc, text = session(checkout, image, scratch, tmp_path / "dry", "--mlperf-dry-run")
    print(f"dry run: {time.monotonic() - started:.1f} s\n{text}")
    assert rc == 0, text[-3000:]
    assert "dry run: 3 item(s), 3 would run, 0 skipped" in text, text[-3000:]
    for benchmark, scenario in ITEMS:
        assert f"{benchmark} {scenario} performance default: KnownSystem.H200_SXM_141GBx8" in text
        assert f"config: configs.{benchmark}.{scenario}.H200_SXM_141GBx8 (the harness own)" in text
        assert f"engine: build/engines/H200-SXM-141GBx8/{benchmark}/{scenario}/" in text
    assert not list(scratch.rglob("*.plan"))  # nothing built

    rc, text = session(checkout, image, scratch, tmp_path / "s1")
    first = results(tmp_path / "s1")
    records = {(r["benchmark"].split("-9")[0], r["scenario"]): r for r in first["items"]}
    assert set(records) >= set(ITEMS), (sorted(records), text[-3000:])
    for item in ITEMS:
        verdict = records[item]["verdict"]
        assert verdict["outcome"] == "passed", (item, verdict, text[-3000:])
    assert rc == 0, text[-3000:]
    actions = engine_actions(first)
    assert all(actions.get(item) == "built" for item in ITEMS), actions
    plans = sorted(p.name for p in scratch.rglob("*.plan"))
    assert len(plans) == len(ITEMS), plans

    rc, text = session(checkout, image, scratch, tmp_path / "s2")
    second = results(tmp_path / "s2")
    assert rc == 0, text[-3000:]
    actions = engine_actions(second)
    assert all(actions.get(item) == "reused" for item in ITEMS), actions
    assert sorted(p.name for p in scratch.rglob("*.plan")) == plans
