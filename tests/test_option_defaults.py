"""Options' defaults and choices are stated once, in ``config.OPTIONS``: no copy of a choice
list elsewhere, no default restated after OPTIONS applied it, and an option set to an empty
value still reads as its default."""

from __future__ import annotations

import ast
from dataclasses import MISSING, fields, replace
from pathlib import Path

import pytest

from pytest_mlperf.backends.options import HarnessOptions
from pytest_mlperf.catalog import CONFIG_VERS
from pytest_mlperf.config import OPTIONS, OptionSpec, RunConfig, parse_run_config
from tests.loadgen_runs import tiny_catalog
from tests.test_layers import MODULES

#: Each option's choices as OPTIONS spells them; config_ver's are the catalog's CONFIG_VERS,
#: which OPTIONS names.
CHOICES: dict[tuple[object, ...], str] = {
    spec.choices: spec.name for spec in OPTIONS if spec.choices and spec.choices is not CONFIG_VERS
}
DEFAULTS = {spec.default for spec in OPTIONS if spec.default is not None}


def choice_copies(name: str, source: str) -> list[str]:
    """Tuples in ``source`` equal to an option's choices (the OPTIONS table's own excepted)."""
    tree = ast.parse(source)
    skip: set[int] = set()
    if name == "pytest_mlperf.config":
        table = next(
            n
            for n in tree.body
            if isinstance(n, ast.Assign)
            and any(getattr(t, "id", "") == "OPTIONS" for t in n.targets)
        )
        skip = {id(n) for n in ast.walk(table)}
    copies = []
    for node in ast.walk(tree):
        if id(node) in skip or not isinstance(node, ast.Tuple):
            continue
        values = tuple(e.value if isinstance(e, ast.Constant) else None for e in node.elts)
        if values in CHOICES:
            copies.append(f"{node.lineno}: {CHOICES[values]} {values}")
    return copies


def restated_defaults(source: str) -> list[str]:
    """``value or "<an OPTIONS default>"``: a default applied again after OPTIONS did."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            last = node.values[-1]
            if isinstance(last, ast.Constant) and last.value in DEFAULTS:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checks_find_copies() -> None:
    sample = 'SPLITS = ("none", "cpu", "gpu", "mig")\nmode = text(spec) or "performance"\n'
    assert choice_copies("x", sample) == ["1: split ('none', 'cpu', 'gpu', 'mig')"]
    assert restated_defaults(sample) == ["2: text(spec) or 'performance'"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_copies_an_options_choices(name: str) -> None:
    assert choice_copies(name, MODULES[name].read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "name", ["pytest_mlperf.config", "pytest_mlperf.option_values", "pytest_mlperf.plugin"]
)
def test_the_option_parsers_do_not_restate_defaults(name: str) -> None:
    assert restated_defaults(MODULES[name].read_text(encoding="utf-8")) == []


def _parse(values: dict[str, str], tmp_path: Path) -> RunConfig:
    def get(spec: OptionSpec) -> str | None:
        return values.get(spec.name)

    return parse_run_config(get, tiny_catalog(), ["reference", "nvidia"], tmp_path)


def test_an_empty_value_reads_as_the_default(tmp_path: Path) -> None:
    """``--mlperf-mode=`` (and every option with a default) means the default."""
    with_default = [spec.name for spec in OPTIONS if spec.default is not None]
    assert {"mode", "backend", "devices", "repeat", "tolerance", "split"} <= set(with_default)
    empty = _parse(dict.fromkeys(with_default, ""), tmp_path)
    unset = _parse({}, tmp_path)
    assert empty.enabled and not unset.enabled  # mode is a selection option, given empty
    assert replace(empty, enabled=False) == unset
    assert (unset.modes, unset.backend, unset.devices, unset.repeat) == (
        ("performance",),
        "auto",
        ("all",),
        1,
    )
    assert (unset.tolerance_pct, unset.provision, unset.split, unset.calibrate) == (
        5.0,
        "off",
        "none",
        True,
    )


def test_run_config_declares_no_option_defaults() -> None:
    """Every RunConfig field is filled by parse_run_config; none carries a default of its own
    but the :class:`HarnessOptions` ones (for a backend made directly)."""
    own = [f for f in fields(RunConfig) if f.name not in {h.name for h in fields(HarnessOptions)}]
    assert own and [f.name for f in own if f.default is not MISSING] == []
    assert [f.name for f in own if f.default_factory is not MISSING] == []
