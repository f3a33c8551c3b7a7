"""The backend contract, read statically (``ast``) from pytest_mlperf/: every member the
package uses on a backend is declared in ``backends/base.py`` (:class:`Backend` or one of the
optional capability protocols), nobody probes a backend with ``getattr``/``hasattr``, and
no module under ``backends/`` reaches a gate module (backends never judge)."""

from __future__ import annotations

import ast

import pytest

from pytest_mlperf.backends import base
from pytest_mlperf.backends.nvidia import NvidiaBackend
from pytest_mlperf.backends.reference import ReferenceBackend
from tests.test_layers import GRAPH, MODULES

#: Modules that judge an item (they return Checks / verdicts): a backend only runs.
GATES = frozenset(
    {
        "pytest_mlperf.verdict",
        "pytest_mlperf.baseline",
        "pytest_mlperf.thresholds",
        "pytest_mlperf.history.gate",
        "pytest_mlperf.compliance",
        "pytest_mlperf.submission",
        "pytest_mlperf.accuracy.evaluate",
        "pytest_mlperf.accuracy.harness",
    }
)
#: Annotations that make a parameter a backend, whatever its name.
BACKEND_TYPES = frozenset({"Backend", *(c.__name__ for c in base.CAPABILITIES)})


def _members(cls: type) -> set[str]:
    """A protocol's declared members: its annotations and its own public functions."""
    names = set(getattr(cls, "__annotations__", {}))
    return names | {n for n, v in vars(cls).items() if not n.startswith("_") and callable(v)}


DECLARED = _members(base.Backend).union(*(_members(c) for c in base.CAPABILITIES))


def _dotted(node: ast.expr) -> str:
    """``self._backend`` for an attribute chain or a name; '' for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    if isinstance(node, ast.Call):  # self.side_backend("A").run(...)
        return _dotted(node.func)
    return ""


def _backend_names(tree: ast.AST) -> set[str]:
    """Parameters and variables annotated with :data:`BACKEND_TYPES` anywhere in ``tree``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        target, annotation = None, None
        if isinstance(node, ast.arg) and node.annotation is not None:
            target, annotation = node.arg, node.annotation
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, annotation = node.target.id, node.annotation
        if target and annotation is not None:
            words = {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)}
            words |= {
                n.value
                for n in ast.walk(annotation)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            }
            if words & BACKEND_TYPES:
                names.add(target)
    return names


def _is_backend(expr: str, typed: set[str]) -> bool:
    last = expr.rsplit(".", 1)[-1]
    return "backend" in last.lower() or expr in typed


def probes(source: str) -> list[str]:
    """``getattr``/``hasattr`` calls on a backend in ``source``: ``line: call``."""
    tree = ast.parse(source)
    typed = _backend_names(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and node.args
            and _is_backend(_dotted(node.args[0]), typed)
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def used_members(source: str) -> set[str]:
    """The attributes read on a backend in ``source`` (``backend.run`` → ``run``)."""
    tree = ast.parse(source)
    typed = _backend_names(tree)
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and (inner := _dotted(node.value))
        and _is_backend(inner, typed)
        and not inner.endswith(("_backends", "backend_name", "backend_error"))
    }


#: The callers of backends: everything but the backends themselves.
CALLERS = sorted(name for name in MODULES if not name.startswith("pytest_mlperf.backends"))


def _source(name: str) -> str:
    return MODULES[name].read_text(encoding="utf-8")


def test_the_checks_find_what_they_look_for() -> None:
    sample = (
        "def f(backend, other, be: Backend):\n"
        "    getattr(backend, 'serial_prepare', True)\n"
        "    hasattr(self._backend, 'dry_run')\n"
        "    getattr(be, 'devices', None)\n"
        "    getattr(other, 'x', None)\n"
        "    backend.lock_devices()\n"
        "    self.side_backend('A').run(r, p)\n"
    )
    assert [p.split(":")[0] for p in probes(sample)] == ["2", "3", "4"]
    assert used_members(sample) == {"lock_devices", "run"}


@pytest.mark.parametrize("name", CALLERS)
def test_no_module_probes_a_backend(name: str) -> None:
    found = probes(_source(name))
    assert not found, (
        f"{name} probes a backend: declare the member in backends/base.py (a capability "
        f"protocol) and ask isinstance: {found}"
    )


def test_every_member_the_package_uses_is_declared() -> None:
    used = set().union(*(used_members(_source(name)) for name in CALLERS))
    assert used >= {"run", "prepare", "describe", "accuracy_data"}  # the check reads callers
    assert used - DECLARED == set(), "declare these in backends/base.py"


def test_the_capabilities_are_runtime_checkable_protocols() -> None:
    for cap in base.CAPABILITIES:
        assert getattr(cap, "_is_runtime_protocol", False), cap
        assert _members(cap), cap


def test_the_built_in_backends_declare_what_they_have() -> None:
    def caps(cls: type) -> set[str]:
        return {c.__name__ for c in base.CAPABILITIES if c in cls.__mro__}  # declared, by name

    for cls in (ReferenceBackend, NvidiaBackend):  # the required protocol, structurally
        assert isinstance(cls.__new__(cls), base.Backend), cls
    assert caps(ReferenceBackend) == {
        "AccuracyProvider",
        "ComplianceIndexMap",
        "DeviceLocks",
        "PrepareOrder",
    }
    assert caps(NvidiaBackend) == {
        "AccuracyProvider",
        "DeviceList",
        "DeviceLocks",
        "DryRunner",
        "PerformanceQslAccuracy",
        "PrepareOrder",
    }


def test_a_backend_without_a_capability_gets_the_stated_default() -> None:
    class Bare:
        name = "bare"

    bare = Bare()
    assert base.prepares_serially(bare) is True  # type: ignore[arg-type]
    assert base.reuses_accuracy_run(bare) is False  # type: ignore[arg-type]
    assert not any(isinstance(bare, cap) for cap in base.CAPABILITIES)


def _reached(name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        for dep in GRAPH[todo.pop()][0] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if n.startswith("pytest_mlperf.backends"))
)
def test_no_backend_module_reaches_a_gate(name: str) -> None:
    assert not _reached(name) & GATES, f"{name} imports (maybe through others) a gate module"


def test_the_gate_check_follows_imports() -> None:
    assert "pytest_mlperf.thresholds" in _reached("pytest_mlperf.verdict")
    assert set(GATES) <= set(MODULES)


def test_the_contract_is_one_file() -> None:
    """Every protocol the package declares for backends lives in backends/base.py."""
    elsewhere = []
    for name, path in MODULES.items():
        if name == "pytest_mlperf.backends.base":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name in BACKEND_TYPES:
                elsewhere.append(f"{name}.{node.name}")
    assert elsewhere == []
