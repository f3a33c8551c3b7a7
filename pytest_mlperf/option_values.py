"""Readers of one option value each (lists, booleans, paths, counts, devices, engines, a
targets file): a bad value is a :class:`ConfigError` naming the option and the valid ones.

``config.parse_run_config`` applies them to the values ``config.OPTIONS`` defaulted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from pytest_mlperf.catalog import SCENARIOS, Variant
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.history.results_file import ResultsFile, load_results, pool_results
from pytest_mlperf.pathcheck import checked_path


def split_list(value: str, option: str) -> list[str]:
    """Split a comma list; an empty list or empty element is an error naming the option."""
    parts = [p.strip() for p in value.split(",")]
    if not value.strip() or any(not p for p in parts):
        raise ConfigError(f"{option}: empty value or empty list element in {value!r}")
    return parts


def scenario_name(value: str, option: str) -> str:
    """A scenario in any case, as MLPerf spells it."""
    for name in SCENARIOS:
        if value.lower() == name.lower():
            return name
    raise ConfigError(f"{option}: unknown scenario {value!r}; valid: {', '.join(SCENARIOS)}")


def truthy(value: str, name: str) -> bool:
    """An ini boolean: 1/true/yes/on or 0/false/no/off/empty."""
    key = value.strip().lower()
    if key in ("1", "true", "yes", "on"):
        return True
    if key in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: invalid boolean {value!r}; valid: true, false")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pytest-mlperf`` or ``~/.cache/pytest-mlperf``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-mlperf"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, else all)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def rooted_path(value: str | None, rootdir: Path, option: str) -> Path | None:
    """A checked path, relative ones under ``rootdir``; None for no value."""
    if not value:
        return None
    path = checked_path(value, option).expanduser()
    return path if path.is_absolute() else rootdir / path


def thread_count(value: str | None) -> int | None:
    """``--mlperf-threads``: 1 to the CPUs this process may use."""
    if value is None:
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = -1
    if threads < 1:
        raise ConfigError(f"--mlperf-threads: {value!r} is not a positive integer")
    if threads > available_cpus():
        raise ConfigError(
            f"--mlperf-threads: {value!r} is more than the {available_cpus()} CPUs "
            f"available to this process; valid: 1 to {available_cpus()}"
        )
    return threads


def repeat_count(value: str) -> int:
    """``--mlperf-repeat``: a whole number from 1 to 100."""
    try:
        count = int(value)
    except ValueError:
        count = 0
    if not 1 <= count <= 100:
        raise ConfigError(
            f"--mlperf-repeat: {value!r} is not a whole number of runs from 1 to 100 (e.g. 3)"
        )
    return count


def device_list(value: str) -> tuple[str, ...] | None:
    """``--mlperf-devices``: None for ``none``, ``("all",)``, or GPU indexes / UUIDs."""
    value = value.strip()
    if value.lower() == "none":
        return None
    if value.lower() == "all":
        return ("all",)
    devices = tuple(split_list(value, "--mlperf-devices"))
    bad = [d for d in devices if not (d.isdigit() or d.startswith(("MIG-", "GPU-")))]
    if bad:
        raise ConfigError(
            f"--mlperf-devices: invalid device {bad[0]!r}; valid: all, none, GPU indexes (0,1), "
            "GPU-<uuid> or MIG-<uuid>"
        )
    return devices


def timeout_seconds(value: str | None) -> float | None:
    """``--mlperf-timeout``: a positive, finite number of seconds."""
    if value is None:
        return None
    try:
        timeout = float(value)
    except ValueError:
        timeout = -1.0
    if not timeout > 0:
        raise ConfigError(f"--mlperf-timeout: {value!r} is not a positive number of seconds")
    if not math.isfinite(timeout):
        raise ConfigError(
            f"--mlperf-timeout: {value!r} is not a finite number of seconds "
            "(no timeout at all is not an option; give a number)"
        )
    return timeout


def docker_hosts(value: str | None) -> tuple[str, ...]:
    """``--mlperf-docker-host``: engine addresses (unix://, tcp://, ssh://)."""
    if value is None:
        return ()
    hosts = tuple(split_list(value, "--mlperf-docker-host"))
    bad = [h for h in hosts if not h.startswith(("unix://", "tcp://", "ssh://"))]
    if bad:
        raise ConfigError(
            f"--mlperf-docker-host: invalid engine address {bad[0]!r}; "
            "valid: unix://PATH, tcp://HOST:PORT, ssh://USER@HOST"
        )
    return hosts


def load_targets(path: Path, variants: Sequence[Variant]) -> dict[str, dict[str, dict[str, float]]]:
    """``--mlperf-targets``: the file's targets (validated) by benchmark name."""
    from pytest_mlperf import jsonstrict
    from pytest_mlperf.errors import DataError
    from pytest_mlperf.schemas import validate

    try:
        data = jsonstrict.load_file(path)
    except OSError as exc:
        raise ConfigError(f"--mlperf-targets: cannot read {str(path)!r}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"--mlperf-targets: {str(path)!r} is not JSON: {exc}") from exc
    try:
        validate(data, "targets", f"--mlperf-targets {path}")
    except DataError as exc:
        raise ConfigError(str(exc)) from exc
    targets = data["targets"]
    known = {v.name for v in variants} | {v.family for v in variants}
    unknown = sorted(set(targets) - known)
    if unknown:
        raise ConfigError(
            f"--mlperf-targets: {path} names {', '.join(unknown)}, which this run does not "
            f"select; valid: {', '.join(sorted(known))}"
        )
    return {
        bench: {scen: {k: float(v) for k, v in vals.items()} for scen, vals in by_scen.items()}
        for bench, by_scen in targets.items()
    }


def pooled_baseline(value: str | None, rootdir: Path) -> ResultsFile | None:
    """``--mlperf-baseline``: one run, or several (comma-separated) pooled into one baseline."""
    if not value or not value.strip():
        return None
    option = "--mlperf-baseline"
    parts = [part.strip() for part in value.split(",")]
    if any(not part for part in parts):
        raise ConfigError(
            f"{option}: {value!r} has an empty entry; give one results.json (or run or "
            "results directory), or several separated by commas"
        )
    files: list[ResultsFile] = []
    seen: dict[Path, str] = {}
    for part in parts:
        path = rooted_path(part, rootdir, option)
        assert path is not None
        loaded = load_results(path, option)
        resolved = loaded.path.resolve()
        if resolved in seen:
            raise ConfigError(
                f"{option}: {part!r} is the same run as {seen[resolved]!r} ({loaded.path}); "
                "pool different runs of the baseline build"
            )
        seen[resolved] = part
        files.append(loaded)
    return pool_results(files)
