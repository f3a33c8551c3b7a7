"""RunConfig: every ``--mlperf-*`` option and ``mlperf_*`` ini value, parsed and validated.

:data:`OPTIONS` is the one place an option's default and choices are stated.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlperf.abtest import AbSpec, parse_ab
from pytest_mlperf.backends.options import HarnessOptions
from pytest_mlperf.baseline import parse_tolerance
from pytest_mlperf.catalog import CONFIG_VERS, RUN_MODES, Catalog, Variant
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.history.results_file import ResultsFile
from pytest_mlperf.history.settings import HistorySettings, parse_history_settings
from pytest_mlperf.identity import ItemId
from pytest_mlperf.option_values import (
    available_cpus,
    default_cache_dir,
    device_list,
    docker_hosts,
    load_targets,
    pooled_baseline,
    repeat_count,
    rooted_path,
    scenario_name,
    split_list,
    thread_count,
    timeout_seconds,
    truthy,
)
from pytest_mlperf.pathcheck import checked_path


@dataclass(frozen=True)
class OptionSpec:
    """One option, offered as ``--mlperf-<name>`` and as the ini key ``mlperf_<name>``."""

    name: str
    help: str
    default: str | None = None
    choices: tuple[str, ...] = ()
    flag: bool = False

    @property
    def cli(self) -> str:
        """The command-line spelling."""
        return "--mlperf-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        """The ini key."""
        return "mlperf_" + self.name


OPTIONS = (
    OptionSpec(
        "benchmarks", "Comma list of benchmarks (bert, 3d-unet, bert-99, ...). Default: all."
    ),
    OptionSpec(
        "scenarios",
        "Comma list of Offline, Server, SingleStream, MultiStream. Default: each benchmark's own.",
    ),
    OptionSpec(
        "mode",
        "performance, accuracy or all. Default: performance.",
        "performance",
        ("performance", "accuracy", "all"),
    ),
    OptionSpec(
        "config_ver",
        "MLPerf config version. Default: default (high_accuracy for a -99.9 benchmark).",
        None,
        CONFIG_VERS,
    ),
    OptionSpec("backend", "auto, reference, nvidia or a plugin's backend. Default: auto.", "auto"),
    OptionSpec("fast", "Shortened runs; INVALID only for run length is accepted.", flag=True),
    OptionSpec(
        "results_dir", "Directory for run results. Default: mlperf-results.", "mlperf-results"
    ),
    OptionSpec(
        "thresholds", "JSON thresholds file that overrides the shipped ones. Default: none."
    ),
    OptionSpec("system", "System name for thresholds. Default: the backend's detected name."),
    OptionSpec(
        "baseline",
        "A previous run's results.json (or its run dir, or a results dir: newest finished run) "
        "to compare every metric with; several, comma-separated, are pooled into one "
        "baseline. Default: none.",
    ),
    OptionSpec(
        "tolerance",
        "Baseline tolerance in percent: throughput may drop / latency rise this much. Default: 5.",
        "5",
    ),
    OptionSpec(
        "save_baseline",
        "Copy this run's results.json here (a file, or a directory) when no item failed. "
        "Default: none.",
    ),
    OptionSpec(
        "history",
        "History store every session's records go into, and the gate judges each item "
        "against: a SQLite file or a postgresql:// URL; off to keep none. Default: "
        "<results dir>/history.sqlite, recorded only (not judged against).",
    ),
    OptionSpec(
        "history_ref",
        "Ref (branch) this session's records are filed under. Default: CI's branch "
        "(GITHUB_HEAD_REF, GITHUB_REF_NAME, CI_COMMIT_REF_NAME), else git's, else local.",
    ),
    OptionSpec(
        "history_compare",
        "Ref whose history items are judged against. Default: a pull/merge request's target "
        "branch (GITHUB_BASE_REF, CI_MERGE_REQUEST_TARGET_BRANCH_NAME), else the session's ref.",
    ),
    OptionSpec(
        "history_window",
        "Judge against the last N good comparable records (at least 5 needed). Default: 10.",
    ),
    OptionSpec(
        "history_significance",
        "One-sided significance a regression must reach against the history (0 < p < 0.5). "
        "Default: 0.001.",
    ),
    OptionSpec("cache_dir", "Cache for built models. Default: $XDG_CACHE_HOME/pytest-mlperf."),
    OptionSpec(
        "calibrate",
        "Tune reference targets to this machine: on or off. Default: on.",
        "on",
        ("on", "off"),
    ),
    OptionSpec(
        "threads", "ONNX Runtime threads per process (reference). Default: runtime's choice."
    ),
    OptionSpec(
        "harness_dir", "NVIDIA harness checkout (closed/NVIDIA) for --mlperf-backend=nvidia."
    ),
    OptionSpec(
        "scratch_path", "MLPERF_SCRATCH_PATH for the nvidia backend (data, models, engines)."
    ),
    OptionSpec("image", "Pre-built harness image to use instead of building one. Default: build."),
    OptionSpec("container", "Existing running harness container to use. Default: launch one."),
    OptionSpec(
        "provision",
        "Host provisioning: off, plan (print the commands) or apply. Default: off.",
        "off",
        ("off", "plan", "apply"),
    ),
    OptionSpec(
        "devices",
        "GPUs for the harness container: all, none, or 0,1 / MIG UUIDs. Default: all.",
        "all",
    ),
    OptionSpec(
        "timeout",
        "Seconds before a harness run (nvidia) is stopped. Default: per benchmark, scenario, "
        "mode and fast/full run from the benchmark data (timeouts_s); 1800 fast, 7200 full "
        "for data without one.",
    ),
    OptionSpec(
        "cuda_runfile", "CUDA runfile path for --mlperf-provision. Default: from host data."
    ),
    OptionSpec(
        "split",
        "Give each xdist worker its own share: none, cpu (reference), gpu or mig (nvidia). Default: none.",
        "none",
        ("none", "cpu", "gpu", "mig"),
    ),
    OptionSpec(
        "submission_checks",
        "MLPerf v4.1 submission-checker rules on each result: off, fail (a broken rule fails "
        "the item) or warn. Default: off.",
        "off",
        ("off", "fail", "warn"),
    ),
    OptionSpec(
        "compliance",
        "Compliance tests to add per benchmark×scenario: TEST01 (accuracy in performance "
        "mode) or off. Default: off.",
    ),
    OptionSpec(
        "reuse",
        "Reuse an identical earlier result (same provenance) from the results dir instead of "
        "running again. Default: off.",
        flag=True,
    ),
    OptionSpec(
        "repeat",
        "Run each performance item N times (separate LoadGen runs); report median, min, max "
        "and spread, judge the median. Default: 1.",
        "1",
    ),
    OptionSpec(
        "ab",
        "Paired A/B: two option sets, baseline;candidate (e.g. 'threads=1;threads=2'), run "
        "alternately (ABBA...) per performance item and judged on the paired ratio's "
        "confidence interval against --mlperf-tolerance. Default: off.",
    ),
    OptionSpec("ab_rounds", "Rounds (one run of each side) of --mlperf-ab. Default: 5."),
    OptionSpec(
        "targets",
        "JSON file pinning LoadGen targets per benchmark and scenario (like a user.conf; "
        "schema targets.schema.json), instead of calibrating/searching. Default: none.",
    ),
    OptionSpec(
        "docker_host",
        "Comma list of Docker engines (unix://, tcp://, ssh://) workers map to. Default: DOCKER_HOST.",
    ),
    # -- fleet (docs/fleet.md) --
    OptionSpec(
        "slurm_nodes",
        "One xdist worker per Slurm node, each an srun job step: auto ($SLURM_JOB_NODELIST) or "
        "a node list such as n[1-3],gpu01; --dist each unless --dist is given. Default: off.",
    ),
    OptionSpec(
        "slurm_args",
        "Extra srun arguments for each worker step (shell-split, never run by a shell). "
        "Default: --exclusive (and --gres=gpu:N inside a GPU allocation) for nvidia, none "
        "for reference.",
    ),
    OptionSpec(
        "fleet",
        "Fleet mode for plain --tx workers on other nodes: logs come back over the xdist "
        "channel, per-node table. Default: on with --mlperf-slurm-nodes, else off.",
        flag=True,
    ),
    OptionSpec(
        "fleet_gate",
        "Fail the items of a node that is a fleet outlier (off the median by more than "
        "max(k × MAD, --mlperf-tolerance)). Default: off (reported only).",
        flag=True,
    ),
    OptionSpec(
        "fleet_mad_k",
        "The fleet outlier bound's MAD multiplier k (a number > 0). Default: 3.",
    ),
)
OPTION_NAMES = tuple(o.name for o in OPTIONS)
OPTION_BY_NAME = {o.name: o for o in OPTIONS}
#: The options that select benchmark items: set anywhere (option or ini), items are generated.
#: Every other option configures; given on the command line with no test path at all, it
#: generates the default selection too (see plugin.generate_items).
SELECTION_OPTIONS = ("benchmarks", "scenarios", "mode", "compliance")

#: Reads an option's raw value: None when the user did not set it anywhere.
RawGetter = Callable[[OptionSpec], "str | bool | None"]


@dataclass(frozen=True)
class ItemSpec:
    """One generated item: a benchmark variant × scenario × mode."""

    variant: Variant
    scenario: str
    mode: str
    config_ver: str

    @property
    def item_id(self) -> ItemId:
        """The item's identity (what its node id names)."""
        return ItemId(self.variant.name, self.scenario, self.mode)

    @property
    def name(self) -> str:
        """``bert-99[Offline-performance]``."""
        return self.item_id.name


@dataclass(frozen=True)
class RunConfig(HarnessOptions):
    """The validated run settings (the nvidia backend's own are :class:`HarnessOptions`')."""

    enabled: bool
    variants: tuple[Variant, ...]
    scenarios: Mapping[str, tuple[str, ...]]
    modes: tuple[str, ...]
    config_ver: str | None
    backend: str
    fast: bool
    thresholds_file: Path | None
    cache_dir: Path
    calibrate: bool
    threads: int | None
    split: str
    docker_hosts: tuple[str, ...]
    baseline: ResultsFile | None
    tolerance_pct: float
    save_baseline: Path | None
    reuse: bool
    submission_checks: str
    #: compliance tests (``TEST01``): one more item per benchmark×scenario, after its modes
    compliance: tuple[str, ...]
    #: ``--mlperf-repeat``: LoadGen runs per performance item
    repeat: int
    #: ``--mlperf-targets``: the file and its pinned targets, benchmark → scenario → values
    targets_file: Path | None
    targets: Mapping[str, Mapping[str, Mapping[str, float]]] | None
    #: ``--mlperf-ab``: the baseline and candidate variants and the rounds
    ab: AbSpec | None
    #: ``--mlperf-history*`` (None: off)
    history: HistorySettings | None

    def config_ver_for(self, variant: Variant) -> str:
        """The config_ver option, or the variant's own first one when the option is unset."""
        return self.config_ver or variant.config_vers[0]

    def items(self) -> list[ItemSpec]:
        """Every benchmark × scenario × mode, then its compliance tests, in a stable order."""
        return [
            ItemSpec(variant, scenario, mode, self.config_ver_for(variant))
            for variant in self.variants
            for scenario in self.scenarios[variant.name]
            for mode in (*self.modes, *self.compliance)
        ]


def _choice(spec: OptionSpec, value: str) -> str:
    key = value.strip().lower()
    if key not in spec.choices:
        raise ConfigError(f"{spec.cli}: invalid value {value!r}; valid: {', '.join(spec.choices)}")
    return key


class _Values:
    """The user's raw values by option name; an option not set (nor set to an empty value,
    where it has a default) reads as its :data:`OPTIONS` default."""

    def __init__(self, get: RawGetter) -> None:
        self.raw = {spec.name: get(spec) for spec in OPTIONS}

    def text(self, name: str) -> str | None:
        spec, value = OPTION_BY_NAME[name], self.raw[name]
        if value is None or (value == "" and spec.default is not None):
            return spec.default
        return str(value) if isinstance(value, bool) else value

    def value(self, name: str) -> str:
        """An option with a default: never None."""
        text = self.text(name)
        assert text is not None, f"{name} has no default in OPTIONS"
        return text

    def choice(self, name: str) -> str:
        return _choice(OPTION_BY_NAME[name], self.value(name))

    def flag(self, name: str) -> bool:
        value = self.raw[name]
        return value is True or (isinstance(value, str) and truthy(value, OPTION_BY_NAME[name].ini))


def option_value(get: RawGetter, name: str) -> str | None:
    """One option's value as :func:`parse_run_config` reads it (its default when unset)."""
    return _Values(get).text(name)


def parse_run_config(
    get: RawGetter, catalog: Catalog, backend_names: Sequence[str], rootdir: Path
) -> RunConfig:
    """Build a :class:`RunConfig`; raises :class:`ConfigError` naming the bad value.

    Options are read group by group in a fixed order: with several bad values, the first
    group's error is the one reported.
    """
    opt = _Values(get)
    # Items are generated when the user says what to run; settings alone (cache, results
    # dir, thresholds, fast, backend...) only configure the fixtures and the backend; the
    # plugin also enables them for node ids and for options given with no test path.
    enabled = any(opt.raw[name] is not None for name in SELECTION_OPTIONS)
    config_ver, modes, variants, scenarios = _selection(opt, catalog)
    backend = _backend(opt.value("backend"), backend_names)
    fast = opt.flag("fast")
    results_dir, thresholds_file, cache_dir = _locations(opt, rootdir)
    threads = thread_count(opt.text("threads"))
    system = opt.text("system")
    nvidia = _nvidia_options(opt, rootdir)
    baseline = _baseline_options(opt, rootdir)
    measure = _measure_options(opt, rootdir, variants, backend)
    return RunConfig(
        enabled=enabled,
        variants=tuple(variants),
        scenarios=scenarios,
        modes=modes,
        config_ver=config_ver,
        backend=backend,
        fast=fast,
        results_dir=results_dir,
        thresholds_file=thresholds_file,
        system=system.strip() if system else None,
        cache_dir=cache_dir,
        threads=threads,
        calibrate=opt.choice("calibrate") == "on",
        submission_checks=opt.choice("submission_checks"),
        compliance=_compliance(opt.text("compliance"), variants, catalog, backend),
        repeat=repeat_count(opt.value("repeat")),
        history=_history(opt, results_dir, rootdir),
        reuse=opt.flag("reuse"),
        **nvidia,
        **baseline,
        **measure,
    )


def _selection(
    opt: _Values, catalog: Catalog
) -> tuple[str | None, tuple[str, ...], list[Variant], dict[str, tuple[str, ...]]]:
    """config_ver, modes, the variants and each one's scenarios."""
    config_ver_value = opt.text("config_ver")
    config_ver = None if config_ver_value is None else opt.choice("config_ver")
    mode = opt.choice("mode")
    modes = RUN_MODES if mode == "all" else (mode,)
    bench_value = opt.text("benchmarks")
    names = (
        split_list(bench_value, "--mlperf-benchmarks")
        if bench_value is not None
        else list(catalog.families)
    )
    variants: list[Variant] = []
    for name in names:
        variant = catalog.resolve(name, config_ver)
        if variant not in variants:
            variants.append(variant)
    return config_ver, modes, variants, _scenarios(opt.text("scenarios"), variants, catalog)


def _scenarios(
    value: str | None, variants: Sequence[Variant], catalog: Catalog
) -> dict[str, tuple[str, ...]]:
    """``--mlperf-scenarios`` per variant: each must define them (default: its own)."""
    wanted = None
    if value is not None:
        option = "--mlperf-scenarios"
        wanted = list(dict.fromkeys(scenario_name(s, option) for s in split_list(value, option)))
    scenarios: dict[str, tuple[str, ...]] = {}
    for variant in variants:
        defined = tuple(catalog.benchmark(variant.name).scenarios)
        if wanted is None:
            scenarios[variant.name] = defined
            continue
        bad = [s for s in wanted if s not in defined]
        if bad:
            round_ = catalog.benchmark(variant.name).round
            raise ConfigError(
                f"--mlperf-scenarios: {variant.name} does not define {', '.join(bad)} in MLPerf "
                f"Inference {round_}; valid for it: {', '.join(defined)}"
            )
        scenarios[variant.name] = tuple(wanted)
    return scenarios


def _backend(value: str, backend_names: Sequence[str]) -> str:
    backend = value.strip().lower()
    valid_backends = ["auto", *backend_names]
    if backend not in valid_backends:
        raise ConfigError(
            f"--mlperf-backend: unknown backend {backend!r}; valid: {', '.join(valid_backends)}"
        )
    return backend


def _locations(opt: _Values, rootdir: Path) -> tuple[Path, Path | None, Path]:
    """The results dir, the user's thresholds file and the cache dir."""
    results_dir = checked_path(opt.value("results_dir"), "--mlperf-results-dir").expanduser()
    if not results_dir.is_absolute():
        results_dir = rootdir / results_dir
    existing = next(p for p in (results_dir, *results_dir.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(
            f"--mlperf-results-dir: {str(results_dir)!r} cannot be a directory: {str(existing)!r} is a file"
        )
    thresholds_value = opt.text("thresholds")
    thresholds_file = None
    if thresholds_value:
        thresholds_file = checked_path(thresholds_value, "--mlperf-thresholds").expanduser()
        if not thresholds_file.is_absolute():
            thresholds_file = rootdir / thresholds_file
        if not thresholds_file.is_file():
            raise ConfigError(f"--mlperf-thresholds: file {thresholds_value!r} does not exist")
    cache_value = opt.text("cache_dir")
    cache_dir = (
        checked_path(cache_value, "--mlperf-cache-dir").expanduser()
        if cache_value
        else default_cache_dir()
    )
    return results_dir, thresholds_file, cache_dir


def _baseline_options(opt: _Values, rootdir: Path) -> dict[str, Any]:
    """``--mlperf-tolerance``, ``--mlperf-baseline``, ``--mlperf-save-baseline``."""
    tolerance_pct = parse_tolerance(opt.value("tolerance"))
    baseline = pooled_baseline(opt.text("baseline"), rootdir)
    save_text = opt.text("save_baseline")
    save_baseline = rooted_path(save_text, rootdir, "--mlperf-save-baseline")
    if save_baseline is not None and save_text and save_text.endswith(("/", os.sep)):
        save_baseline = save_baseline / "results.json"  # a directory, maybe not there yet
    if save_baseline is not None and save_baseline.parent.is_file():
        raise ConfigError(
            f"--mlperf-save-baseline: {str(save_baseline.parent)!r} is a file, not a directory"
        )
    return {"tolerance_pct": tolerance_pct, "baseline": baseline, "save_baseline": save_baseline}


def _measure_options(
    opt: _Values, rootdir: Path, variants: Sequence[Variant], backend: str
) -> dict[str, Any]:
    """``--mlperf-targets`` and ``--mlperf-ab`` (which gives its own rounds, not repeats)."""
    targets_file = rooted_path(opt.text("targets"), rootdir, "--mlperf-targets")
    targets = load_targets(targets_file, variants) if targets_file else None
    ab = parse_ab(
        opt.text("ab"),
        opt.text("ab_rounds"),
        "reference" if backend == "auto" else backend,
        variants,
        available_cpus(),
    )
    if ab is not None and repeat_count(opt.value("repeat")) > 1:
        raise ConfigError(
            "--mlperf-repeat: --mlperf-ab runs its own rounds (--mlperf-ab-rounds); give one"
        )
    return {"targets_file": targets_file, "targets": targets, "ab": ab}


def _history(opt: _Values, results_dir: Path, rootdir: Path) -> HistorySettings | None:
    return parse_history_settings(
        opt.text("history"),
        opt.text("history_ref"),
        opt.text("history_compare"),
        opt.text("history_window"),
        results_dir,
        rootdir,
        significance=opt.text("history_significance"),
    )


def _compliance(
    value: str | None, variants: Sequence[Variant], catalog: Catalog, backend: str
) -> tuple[str, ...]:
    if value is None:
        return ()
    if backend == "nvidia":
        from pytest_mlperf.backends.nvidia.run import TEST01_REFUSED

        raise ConfigError(f"--mlperf-compliance={value}: {TEST01_REFUSED}")
    from pytest_mlperf.compliance import parse_tests

    benches = list({v.family: catalog.benchmark(v.name) for v in variants}.values())
    return parse_tests(value, benches)


def _nvidia_options(opt: _Values, rootdir: Path) -> dict[str, Any]:
    """The nvidia backend's options, validated here so mistakes are usage errors."""
    harness = rooted_path(opt.text("harness_dir"), rootdir, "--mlperf-harness-dir")
    if harness is not None and not harness.is_dir():
        raise ConfigError(f"--mlperf-harness-dir: {str(harness)!r} is not a directory")
    devices = device_list(opt.value("devices"))
    timeout = timeout_seconds(opt.text("timeout"))
    return {
        "harness_dir": harness,
        "scratch_path": rooted_path(opt.text("scratch_path"), rootdir, "--mlperf-scratch-path"),
        "image": opt.text("image"),
        "container": opt.text("container"),
        "provision": opt.choice("provision"),
        "devices": devices,
        "timeout_s": timeout,
        "cuda_runfile": rooted_path(opt.text("cuda_runfile"), rootdir, "--mlperf-cuda-runfile"),
        "split": opt.choice("split"),
        "docker_hosts": docker_hosts(opt.text("docker_host")),
    }
