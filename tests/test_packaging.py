"""Installed as users install it: a non-editable wheel, used from another directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
    )
    (found,) = out.glob("pytest_mlperf-*.whl")
    return found


def test_wheel_carries_data_and_entry_points(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "pytest_mlperf/_data/benchmarks/bert.json",
        "pytest_mlperf/_data/benchmarks/3d-unet.json",
        "pytest_mlperf/_data/benchmarks/thresholds/reference-cpu.json",
        "pytest_mlperf/_data/schemas/result.schema.json",
        "pytest_mlperf/py.typed",
    ):
        assert required in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]" in text and "mlperf = pytest_mlperf.plugin" in text
    assert "pytest-mlperf = pytest_mlperf.cli:main" in text


def test_installed_wheel_finds_its_data_from_elsewhere(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import pytest_mlperf, pytest_mlperf.catalog as c, pytest_mlperf.schemas as s;"
        "cat = c.load_catalog(c.default_dirs());"
        "print(pytest_mlperf.__file__); print(sorted(cat.variant_names));"
        "print(s.load_schema('result')['title'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith(str(target))  # the installed copy, not the checkout
    assert lines[1] == "['3d-unet-99', '3d-unet-99.9', 'bert-99', 'bert-99.9']"
    assert lines[2] == "The result of one pytest-mlperf item (result.json)"
