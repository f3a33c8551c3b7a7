"""Level 1 conformance: the nvidia backend's own engine/config logic against NVIDIA's REAL v4.1
Python, on a machine profile, with only GPU-bound pieces faked.

What is needed (never part of the project; see docs/nvidia.md, "Conformance"):

- ``PYTEST_MLPERF_REAL_NVIDIA``: an extracted ``closed/NVIDIA`` of mlcommons/
  inference_results_v4.1 (checked at 198fc467), with ``build/inference`` (the kit's
  ``extract.sh``);
- ``PYTEST_MLPERF_REAL_PYTHON``: a Python with what NVIDIA's code imports (the kit's venv);
- ``PYTEST_MLPERF_REAL_PYTHONPATH``: NVIDIA's mitten ``src`` (optional if installed);
- ``PYTEST_MLPERF_REAL_KIT``: the nvidia-real-harness kit (default
  ``../shared/tools/nvidia-real-harness``): its ``inprofile.sh`` runs a command "on" a
  profile (fake nvidia-smi/lscpu, cuda stub, /proc/meminfo with the profile's MemTotal;
  needs root for the private mount namespace).

``ProfileBox`` stands in for the harness container: ``HarnessEngines`` runs its commands
(``scripts.get_system_id``, the config-resolution probe, ``cat``/``mkdir``) through it, so what
is replayed is the backend's code, unchanged, against the real harness code.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from pytest_mlperf.backends.nvidia.container import ExecResult

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ("dgx-h200", "hgx-h100-epyc9654", "azure-nd96asr-v4")


def real_setup() -> tuple[Path, Path, Path, str]:
    """(checkout, python, kit, extra PYTHONPATH), or skip: no real checkout was given.

    This is not a missing service: the real code is never in CI (it is NVIDIA's, fetched
    and extracted by whoever runs the check), so the skip is by design there.
    """
    checkout = os.environ.get("PYTEST_MLPERF_REAL_NVIDIA")
    if not checkout:
        pytest.skip("no real NVIDIA checkout: set PYTEST_MLPERF_REAL_NVIDIA (docs/nvidia.md)")
    path = Path(checkout)
    if not (path / "code" / "main.py").is_file():
        pytest.fail(f"PYTEST_MLPERF_REAL_NVIDIA={checkout}: no code/main.py (closed/NVIDIA)")
    python = Path(os.environ.get("PYTEST_MLPERF_REAL_PYTHON", "python3"))
    kit = Path(
        os.environ.get("PYTEST_MLPERF_REAL_KIT", ROOT.parent / "shared/tools/nvidia-real-harness")
    )
    if not (kit / "inprofile.sh").is_file():
        pytest.fail(f"PYTEST_MLPERF_REAL_KIT={kit}: no inprofile.sh")
    return path, python, kit, os.environ.get("PYTEST_MLPERF_REAL_PYTHONPATH", "")


class ProfileBox:
    """The harness container's interface (exec, put_file, path_exists), run locally "on" a
    machine profile in the real checkout."""

    def __init__(self, checkout: Path, python: Path, kit: Path, pythonpath: str, profile: str):
        self.checkout, self.python, self.kit, self.profile = checkout, python, kit, profile
        self.pythonpath = pythonpath
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def exec(
        self,
        argv: Sequence[str],
        on_line: Callable[[str], None] | None = None,
        timeout: float | None = None,
        environment: Mapping[str, str] | None = None,
        workdir: str | None = None,
        grace_s: int = 10,
    ) -> ExecResult:
        """``argv`` under the kit's inprofile.sh; ``python3`` is the real-code Python."""
        argv = [str(self.python) if a == "python3" and i == 0 else a for i, a in enumerate(argv)]
        env = dict(os.environ)
        env.pop("MLPINF_CUSTOM_DEFINITION_PATH", None)
        env["PATH"] = f"{self.python.parent}:{env['PATH']}"
        env["PYTHONPATH"] = self.pythonpath
        env.update(environment or {})
        self.calls.append((list(argv), dict(environment or {})))
        start = time.monotonic()
        done = subprocess.run(
            [str(self.kit / "inprofile.sh"), self.profile, *argv],
            cwd=workdir or self.checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout or 600,
            check=False,
        )
        lines = (done.stdout + done.stderr).splitlines()
        for line in lines:
            if on_line:
                on_line(line)
        return ExecResult(done.returncode, lines[-400:], time.monotonic() - start)

    def put_file(self, path: str, content: bytes) -> None:
        """Write a file (the custom definition directory lies in a temp dir here)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(content)

    def path_exists(self, path: str) -> bool:
        """Whether ``path`` exists."""
        return Path(path).exists()
