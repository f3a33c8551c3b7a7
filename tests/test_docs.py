"""The README's first screen and the links between the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as dashes."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_resolve(doc: Path) -> None:
    for target in _LINK.findall(doc.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        assert path.exists(), f"{doc.name}: {target}: no such file"
        if anchor and path.suffix == ".md":
            assert anchor in _anchors(path), f"{doc.name}: {target}: no such heading"


def test_readme_first_screen_has_what_a_newcomer_needs() -> None:
    first = "\n".join(ROOT.joinpath("README.md").read_text(encoding="utf-8").splitlines()[:45])
    for needed in (
        "MLPerf Inference benchmarks as pytest tests",  # what it is
        "python3 -m pip install . && python3 -m pytest -m mlperf --mlperf-benchmarks=bert,3d-unet",
        "python3 -m pip install -e '.[test]' -q && python3 -m pytest",
        "about **an hour**",  # what a full run costs
        "--mlperf-fast",
        "--mlperf-thresholds=",  # the CI gate
        "--mlperf-history=",  # judged against the run history, not one saved file
        "--junitxml=junit.xml",
        "--self-contained-html",
        "**Exit codes:** 0 passed, 1 an item failed or errored, 2 interrupted, 4 usage error",
        "(docs/ci.md)",
        "(docs/README.md)",
    ):
        assert needed in first, needed
