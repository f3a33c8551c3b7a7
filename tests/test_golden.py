"""bench/golden.py's normalisation: only the listed volatile fields change, nothing else."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "bench" / "golden.py"


@pytest.fixture(scope="module")
def golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location("golden_bench", GOLDEN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["golden_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_json_scrubs_only_volatile_keys(golden: ModuleType) -> None:
    record = {
        "started": "2026-12-03T14:00:00+00:00",
        "items": [{"timing": {"run_s": 0.13, "item_s": 0.4}, "metric": {"value": 73309.5}}],
        "verdict": {"outcome": "failed", "reasons": ["x"]},
    }
    out = json.loads(golden.normalise_json(json.dumps(record)))
    assert out["started"] == "<volatile>"
    assert out["items"][0]["timing"] == {"run_s": "<volatile>", "item_s": "<volatile>"}
    assert out["items"][0]["metric"] == {"value": 73309.5}  # a figure is never normalised
    assert out["verdict"] == record["verdict"]


def test_text_replaces_paths_and_listed_patterns_only(golden: ModuleType, tmp_path: Path) -> None:
    root, src = tmp_path / "golden-x", Path("/checkout")
    text = (
        f'<testsuite time="17.8" timestamp="2026-12-03T14:03:11" hostname="vm">'
        f'<property name="mlperf/run/run_id" value="20261203-140311-31344" />'
        f'<property name="mlperf/x/value" value="73309.5" />{root}/work {src}/benchmarks'
    )
    golden.write(tmp_path / "out.xml", text, root, src)
    written = (tmp_path / "out.xml").read_text()
    assert 'time="<volatile>"' in written and 'hostname="<volatile>"' in written
    assert 'value="<run-id>"' in written
    assert 'value="73309.5"' in written
    assert "<tmp>/work <src>/benchmarks" in written


def test_one_tag_a_line_splits_adjacent_tags_escaped_or_not(golden: ModuleType) -> None:
    assert golden.one_tag_a_line("<a><b>x</b></a>&lt;td&gt;&lt;/td&gt;") == (
        "<a>\n<b>x</b>\n</a>\n&lt;td&gt;\n&lt;/td&gt;"
    )


def test_every_session_has_a_distinct_name_and_steps(golden: ModuleType) -> None:
    names = [s.name for s in golden.SESSIONS]
    assert len(names) == len(set(names)) and all(s.steps for s in golden.SESSIONS)
