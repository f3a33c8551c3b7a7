"""The package's layers, read statically (``ast``) from pytest_mlperf/: no import cycle, and
pytest only in the plugin layer.

Run-time imports count wherever they are (module top or inside a function: a lazy import
still closes a cycle when it runs); imports under ``if TYPE_CHECKING:`` are annotations only
and do not count for cycles, but they do count for "who imports pytest".
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_mlperf"
#: The only modules that may import pytest (or _pytest): the glue between pytest and the rest.
PLUGIN_LAYER = frozenset(
    {
        "pytest_mlperf.plugin",
        "pytest_mlperf.session",
        "pytest_mlperf.items",
        "pytest_mlperf.fixtures",
        "pytest_mlperf.hookspecs",
        "pytest_mlperf.stash",
        "pytest_mlperf.report_hooks",
        "pytest_mlperf.xdist_hooks",
        "pytest_mlperf.terminal_hooks",
        "pytest_mlperf.run_end",
    }
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(modules imported at run time, every top-level package imported anywhere) of ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    runtime: set[str] = set()
    roots: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from pkg import submodule` imports the submodule; `from mod import name`, mod
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for target in targets:
            roots.add(target.split(".")[0])
            if not typing_only and target in MODULES and target != name:
                runtime.add(target)
        for child_node in ast.iter_child_nodes(node):
            visit(child_node, typing_only)

    visit(tree, False)
    return runtime, roots


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                connect(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_layer_test_reads_the_package() -> None:
    assert "pytest_mlperf.plugin" in GRAPH and set(GRAPH) >= PLUGIN_LAYER
    assert "pytest_mlperf.stash" in GRAPH["pytest_mlperf.fixtures"][0]


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles({name: deps for name, (deps, _) in GRAPH.items()}) == []


def test_a_cycle_would_be_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(set(MODULES) - PLUGIN_LAYER))
def test_only_the_plugin_layer_imports_pytest(name: str) -> None:
    _, roots = GRAPH[name]
    assert not roots & {"pytest", "_pytest"}, (
        f"{name} imports pytest: move that into {PLUGIN_LAYER}"
    )


@pytest.mark.parametrize("name", sorted(set(MODULES) - PLUGIN_LAYER))
def test_the_plugin_layer_is_on_top(name: str) -> None:
    """Nothing outside the plugin layer imports a plugin module (it would import pytest)."""
    deps, _ = GRAPH[name]
    assert not deps & PLUGIN_LAYER, f"{name} imports {sorted(deps & PLUGIN_LAYER)}"
