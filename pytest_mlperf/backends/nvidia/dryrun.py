"""The dry run: per item, what the harness itself resolves and what would run, nothing built.

``HarnessEngines.resolve`` asks the harness's own system detection and config resolution
(``resolve.PROBE``) for every (benchmark, scenario, config_ver) with each item's RUN_ARGS;
these functions turn the answers into one line per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_mlperf.backends.nvidia.engines import ENGINES_DIR, HarnessEngines, generate_args
from pytest_mlperf.backends.nvidia.harness import run_args
from pytest_mlperf.backends.nvidia.resolve import RESOLVED


@dataclass(frozen=True)
class DryItem:
    """One item of the session as the harness would run it."""

    benchmark: str
    scenario: str
    config_ver: str
    mode: str


def dry_run(
    engines: HarnessEngines, items: Sequence[DryItem], quick: str | None
) -> list[dict[str, str]]:
    """Resolve every item's config with the harness and describe it (nothing is built).

    A config the harness rejects, or a pair it would skip without a word, raises
    BackendError in the harness's words (from ``resolve``).
    """
    groups = list(dict.fromkeys((i.benchmark, i.scenario, i.config_ver) for i in items))
    modes = list(dict.fromkeys(i.mode for i in items))
    engines.resolve(groups, run_modes=modes, quick=quick)
    rows = []
    for item in items:
        group = (item.benchmark, item.scenario, item.config_ver)
        res = engines.resolutions[group]
        row = {
            "item": f"{item.benchmark} {item.scenario} {item.mode} {item.config_ver}",
            "system_id": f"KnownSystem.{engines.system_id}",
        }
        if res.status != RESOLVED:
            row["skip"] = res.message
            rows.append(row)
            continue
        tag = res.config.get("config_ver", "?")
        row["config"] = (
            f"{res.config_class} ({'generated: ' + engines.custom_dir if res.generated else 'the harness own'})"
        )
        row["engine"] = (
            f"{ENGINES_DIR}/{res.config.get('system_id')}/{item.benchmark}/{item.scenario}/"
            f"*.{tag}.plan (built by make generate_engines "
            f"RUN_ARGS='{generate_args(*group)}'; the builder names the file)"
        )
        env = engines.environment_for(item.benchmark, item.scenario)
        prefix = "".join(f"{k}={v} " for k, v in env.items())
        row["command"] = (
            f"{prefix}make run_harness RUN_ARGS='"
            f"{run_args(item.benchmark, item.scenario, item.mode, item.config_ver, quick)}'"
        )
        rows.append(row)
    return rows


def format_rows(rows: Sequence[dict[str, str]]) -> list[str]:
    """Printable lines: the item, then its facts indented."""
    lines = []
    for row in rows:
        lines.append(f"{row['item']}: {row['system_id']}")
        for key in ("skip", "config", "engine", "command"):
            if key in row:
                lines.append(f"    {key}: {row[key]}")
    return lines
