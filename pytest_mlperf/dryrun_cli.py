"""``--mlperf-dry-run``: ask the backend what the harness would do for the selected items."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pytest_mlperf.backends.base import DryRunner
from pytest_mlperf.config import ItemSpec
from pytest_mlperf.errors import MlperfError

#: exit codes: all resolved (some may be skipped with the harness's reason), a harness
#: error or silent skip, a backend without a dry run (usage error)
OK, FAILED, USAGE = 0, 1, 4


def dry_run_items(
    backend: Any, backend_name: str, plan: Sequence[ItemSpec], progress: Callable[[str], None]
) -> tuple[int, str]:
    """Print the backend's dry run for ``plan`` through ``progress``: (exit code, summary)."""
    if not isinstance(backend, DryRunner):
        return USAGE, (
            f"--mlperf-dry-run: the {backend_name} backend has no dry run "
            "(valid: --mlperf-backend=nvidia)"
        )
    items = list(dict.fromkeys((s.variant.family, s.scenario, s.mode, s.config_ver) for s in plan))
    try:
        lines = backend.dry_run(items, progress)
    except MlperfError as exc:
        progress(f"dry run: FAILED: {exc}")
        return FAILED, f"dry run failed: {exc}"
    for line in lines:
        progress(line)
    skipped = sum(1 for line in lines if line.strip().startswith("skip:"))
    return OK, f"dry run: {len(items)} item(s), {len(items) - skipped} would run, {skipped} skipped"
