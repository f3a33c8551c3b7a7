"""The listed exceptions to tests/test_layers.py's size and type-level cycle rules (issue 27).

One entry a line, each with its reason; a stale entry (the code is short enough now, or
gone) fails the test too, so this list only shrinks. Remove your entry when you fix it.
"""

from __future__ import annotations

#: ``module`` (over MAX_MODULE_LINES) or ``module::Qualified.name`` (over MAX_FUNCTION_LINES)
LONG: dict[str, str] = {}

#: import edges ``"importer -> imported"`` under ``if TYPE_CHECKING:`` that close a type-level
#: cycle (the run-time graph has none: test_the_import_graph_has_no_cycle)
TYPE_CYCLE_EDGES: dict[str, str] = {}
