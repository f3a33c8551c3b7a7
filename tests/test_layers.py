"""The package's layers, read statically (``ast``) from pytest_mlperf/: no import cycle, and
pytest only in the plugin layer; no module over 600 lines, no function over 60.

Run-time imports count wherever they are (module top or inside a function: a lazy import
still closes a cycle when it runs). Imports under ``if TYPE_CHECKING:`` are annotations only:
they do not count for the run-time cycle test, but the type-level test counts them too, and
they count for "who imports pytest". The listed exceptions to the size and type-level rules
are in tests/layers_allowlist.py, each with its reason; a stale entry fails.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.layers_allowlist import LONG, TYPE_CYCLE_EDGES

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


def _imports(name: str, typing_too: bool = False) -> tuple[set[str], set[str]]:
    """(modules imported at run time, every top-level package imported anywhere) of ``name``;
    ``typing_too``: the first set also holds the imports under ``if TYPE_CHECKING:``."""
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
            if (typing_too or not typing_only) and target in MODULES and target != name:
                runtime.add(target)
        for child_node in ast.iter_child_nodes(node):
            visit(child_node, typing_only)

    visit(tree, False)
    return runtime, roots


GRAPH = {name: _imports(name) for name in MODULES}
#: every import, those under ``if TYPE_CHECKING:`` too
TYPE_GRAPH = {name: _imports(name, typing_too=True)[0] for name in MODULES}


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


# -- type-level cycles -----------------------------------------------------------------------
def _edge(importer: str, imported: str) -> str:
    return f"{importer} -> {imported}"


def type_cycle_problems(graph: Mapping[str, set[str]], allowed: Iterable[str]) -> list[str]:
    """What breaks the type-level rule: cycles left once the ``allowed`` edges are taken
    out, and stale allowed edges (gone, or closing no cycle any more)."""
    allowed = set(allowed)
    reduced = {n: {d for d in deps if _edge(n, d) not in allowed} for n, deps in graph.items()}
    problems = [f"type-level import cycle: {' <-> '.join(c)}" for c in _cycles(reduced)]
    for edge in sorted(allowed):
        importer, _, imported = edge.partition(" -> ")
        if imported not in graph.get(importer, set()):
            problems.append(f"stale entry {edge!r}: no such import any more; remove it")
            continue
        with_edge = {**reduced, importer: reduced[importer] | {imported}}
        if not any(importer in c and imported in c for c in _cycles(with_edge)):
            problems.append(f"stale entry {edge!r}: it closes no cycle any more; remove it")
    return problems


def test_no_type_level_cycle_beyond_the_listed_edges() -> None:
    assert type_cycle_problems(TYPE_GRAPH, TYPE_CYCLE_EDGES) == []
    assert all(reason.strip() for reason in TYPE_CYCLE_EDGES.values())


def test_a_type_level_cycle_and_a_stale_entry_would_be_found() -> None:
    graph = {"a": {"b"}, "b": {"a"}, "c": {"a"}, "d": set()}
    assert type_cycle_problems(graph, []) == ["type-level import cycle: a <-> b"]
    assert type_cycle_problems(graph, ["b -> a"]) == []
    assert type_cycle_problems(graph, ["b -> a", "c -> a"]) == [
        "stale entry 'c -> a': it closes no cycle any more; remove it"
    ]
    assert type_cycle_problems(graph, ["b -> a", "d -> a"]) == [
        "stale entry 'd -> a': no such import any more; remove it"
    ]


def test_type_graph_counts_type_checking_imports() -> None:
    """The type-level graph is the run-time one plus the ``if TYPE_CHECKING:`` imports."""
    assert all(GRAPH[name][0] <= TYPE_GRAPH[name] for name in MODULES)
    assert "pytest_mlperf.config" in TYPE_GRAPH["pytest_mlperf.hookspecs"]  # RunConfig
    assert "pytest_mlperf.config" not in GRAPH["pytest_mlperf.hookspecs"][0]


# -- sizes -----------------------------------------------------------------------------------
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def sizes(source: str, module: str) -> dict[str, int]:
    """Lines of ``module`` (key: the module) and of each function or method in it (key:
    ``module::Qualified.name``), counted from the ``def`` line to the end line inclusive."""
    found = {module: len(source.splitlines())}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                found[f"{module}::{name}"] = (child.end_lineno or child.lineno) - child.lineno + 1
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def size_problems(measured: Mapping[str, int], allowed: Mapping[str, str]) -> list[str]:
    """Modules and functions over the limits and not listed; listed ones that are not."""
    problems = []
    for key, lines in sorted(measured.items()):
        limit = MAX_FUNCTION_LINES if "::" in key else MAX_MODULE_LINES
        if lines > limit and key not in allowed:
            problems.append(
                f"{key} is {lines} lines (over {limit}): split it, or list it with a reason "
                "in tests/layers_allowlist.py LONG"
            )
    for key in sorted(allowed):
        limit = MAX_FUNCTION_LINES if "::" in key else MAX_MODULE_LINES
        if key not in measured:
            problems.append(f"stale entry {key!r}: no such module or function; remove it")
        elif measured[key] <= limit:
            problems.append(
                f"stale entry {key!r}: {measured[key]} lines, within {limit} now; remove it"
            )
    return problems


def package_sizes() -> dict[str, int]:
    measured: dict[str, int] = {}
    for name, path in MODULES.items():
        measured |= sizes(path.read_text(encoding="utf-8"), name)
    return measured


def test_no_module_or_function_too_long_unless_listed() -> None:
    assert size_problems(package_sizes(), LONG) == []
    assert all(reason.strip() for reason in LONG.values())


SOURCE = """
import x

def short():
    return 1

class C:
    @property
    def long(self):
{body}
        def inner():
            pass
"""


def test_sizes_count_def_to_end_inclusive() -> None:
    source = SOURCE.format(body="\n".join("        y = 1" for _ in range(58)))
    measured = sizes(source, "m")
    # def line + 58 body lines + the nested def (2 lines); the decorator is not counted
    assert measured["m::C.long"] == 61
    assert measured["m::short"] == 2
    assert measured["m::C.long.inner"] == 2
    assert measured["m"] == len(source.splitlines())


def test_a_long_function_or_module_and_a_stale_entry_would_be_found() -> None:
    long_source = SOURCE.format(body="\n".join("        y = 1" for _ in range(58)))
    short_source = SOURCE.format(body="        y = 1")
    assert size_problems(sizes(long_source, "m"), {}) == [
        "m::C.long is 61 lines (over 60): split it, or list it with a reason in "
        "tests/layers_allowlist.py LONG"
    ]
    assert size_problems(sizes(long_source, "m"), {"m::C.long": "being split"}) == []
    assert size_problems(sizes(short_source, "m"), {"m::C.long": "being split"}) == [
        "stale entry 'm::C.long': 4 lines, within 60 now; remove it"
    ]
    assert size_problems(sizes(short_source, "m"), {"m::gone": "x"}) == [
        "stale entry 'm::gone': no such module or function; remove it"
    ]
    big = "\n".join(f"v{i} = {i}" for i in range(601))
    assert size_problems(sizes(big, "big"), {}) == [
        "big is 601 lines (over 600): split it, or list it with a reason in "
        "tests/layers_allowlist.py LONG"
    ]


def test_the_size_check_reads_a_package_on_disk(tmp_path: Path) -> None:
    """The check over files, as the package test runs it: a temp module with a 61-line
    function is found, the same with a 60-line one is not."""
    for body_lines, expected in ((60, ["pkg.mod::f"]), (59, [])):
        module = tmp_path / f"mod{body_lines}.py"
        module.write_text("def f():\n" + "".join("    y = 1\n" for _ in range(body_lines)))
        measured = sizes(module.read_text(), "pkg.mod")
        assert [p.split(" ")[0] for p in size_problems(measured, {})] == expected
