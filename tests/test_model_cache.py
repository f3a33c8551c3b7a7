"""The reference model cache: damaged artefacts are rebuilt, read-only complete caches used,
leftovers of killed builds removed."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort
import pytest

from pytest_mlperf.backends.reference import ReferenceBackend, cache
from pytest_mlperf.errors import BackendError
from tests.loadgen_runs import tiny_catalog


def _model(cache_dir: Path, precision: str) -> tuple[Path, list[str]]:
    backend = ReferenceBackend(cache_dir)
    bench = tiny_catalog().benchmark("tiny-99")
    messages: list[str] = []
    path = backend._model(bench, precision, messages.append)
    backend.close()
    return path, messages


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The tiny benchmark's FP32 and INT8 models as a clean build makes them."""
    root = tmp_path_factory.mktemp("clean-cache")
    fp32, _ = _model(root, "fp32")
    int8, _ = _model(root, "int8")
    return {"fp32": fp32.read_bytes(), "int8": int8.read_bytes()}


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbled":  # 4 KB of other bytes inside the model
        middle = len(data) // 2
        path.write_bytes(data[:middle] + os.urandom(4096) + data[middle + 4096 :])
    else:  # the build was killed after the rename, before the checksum
        cache.checksum_path(path).unlink()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("how", ["truncated", "empty", "garbled", "unsealed"])
def test_damaged_model_is_rebuilt(
    tmp_path: Path, built: dict[str, bytes], precision: str, how: str
) -> None:
    path, _ = _model(tmp_path, precision)
    assert cache.damage(path) is None
    _damage(path, how)
    assert cache.damage(path) is not None
    again, messages = _model(tmp_path, precision)
    assert again == path and cache.damage(path) is None
    assert path.read_bytes() == built[precision]  # the same deterministic model again
    verb = "built" if precision == "fp32" else "quantized"
    assert any(f": {verb} " in m for m in messages), messages
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_read_only_complete_cache_is_used_as_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = _model(tmp_path, "int8")
    (tmp_path / "models" / ".build.lock").unlink(missing_ok=True)
    monkeypatch.setattr(cache, "writable", lambda directory: False)
    again, messages = _model(tmp_path, "int8")
    assert again == path
    assert all("reusing cached" in m for m in messages), messages
    assert not (tmp_path / "models" / ".build.lock").exists()  # no lock taken


def test_read_only_damaged_cache_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = _model(tmp_path, "int8")
    _damage(path, "garbled")
    monkeypatch.setattr(cache, "writable", lambda directory: False)
    with pytest.raises(BackendError) as info:
        _model(tmp_path, "int8")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cached model {path} is damaged")
    assert "is read-only" in message


def test_leftovers_of_killed_builds_are_removed(tmp_path: Path) -> None:
    _model(tmp_path, "fp32")
    models = tmp_path / "models"
    quant = models / ".quant-killed"
    quant.mkdir()
    (quant / "named.onnx").write_bytes(b"x" * 1000)
    (models / "tmpkilled.tmp").write_bytes(b"partial")
    kept = models / "unrelated.txt"
    kept.write_text("not ours to remove")
    _model(tmp_path, "fp32")  # nothing to build: the next use under the lock cleans up
    assert not quant.exists() and not (models / "tmpkilled.tmp").exists()
    assert kept.exists()


def _evalset(cache_dir: Path) -> tuple[Path, list[str]]:
    backend = ReferenceBackend(cache_dir)
    bench = tiny_catalog().benchmark("tiny-99")
    messages: list[str] = []
    evalset = backend._evalset(bench, messages.append)
    backend.close()
    return Path(evalset.path), messages


@pytest.mark.parametrize("how", ["truncated", "empty", "garbled", "unsealed"])
def test_damaged_evaluation_set_is_rebuilt_with_a_message(tmp_path: Path, how: str) -> None:
    """The evaluation-set cache is sealed and verified as the model cache is: a damaged
    file is detected, discarded and rebuilt, and the run says so (before: every run
    failed reading it until it was deleted by hand)."""
    path, messages = _evalset(tmp_path)
    good = path.read_bytes()
    assert cache.damage(path) is None and any("wrote evaluation set" in m for m in messages)
    _, again = _evalset(tmp_path)
    assert any("reusing cached evaluation set" in m for m in again)
    _damage(path, how)
    assert cache.damage(path) is not None
    rebuilt, said = _evalset(tmp_path)
    assert rebuilt == path and path.read_bytes() == good and cache.damage(path) is None
    [note] = [m for m in said if "discarded and rebuilt" in m]
    assert note.startswith(f"tiny: cached evaluation set {path} ")
    assert ("has no checksum" if how == "unsealed" else "is damaged") in note
