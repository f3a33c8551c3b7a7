"""RunConfig: every ``--mlperf-*`` option and ``mlperf_*`` ini value, parsed and validated."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_mlperf.abtest import AbSpec, parse_ab
from pytest_mlperf.baseline import DEFAULT_TOLERANCE_PCT, parse_tolerance
from pytest_mlperf.catalog import CONFIG_VERS, RUN_MODES, SCENARIOS, Catalog, Variant
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.history.results_file import ResultsFile, load_results, pool_results
from pytest_mlperf.history.settings import HistorySettings, parse_history_settings
from pytest_mlperf.identity import ItemId
from pytest_mlperf.pathcheck import checked_path

MODES = ("performance", "accuracy", "all")


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
    OptionSpec("mode", "performance, accuracy or all. Default: performance.", "performance", MODES),
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
        "devices", "GPUs for the harness container: all, none, or 0,1 / MIG UUIDs. Default: all."
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
class RunConfig:
    """The validated run settings."""

    enabled: bool
    variants: tuple[Variant, ...]
    scenarios: Mapping[str, tuple[str, ...]]
    modes: tuple[str, ...]
    config_ver: str | None
    backend: str
    fast: bool
    results_dir: Path
    thresholds_file: Path | None
    system: str | None
    cache_dir: Path
    calibrate: bool
    threads: int | None
    harness_dir: Path | None = None
    scratch_path: Path | None = None
    image: str | None = None
    container: str | None = None
    provision: str = "off"
    devices: tuple[str, ...] | None = ("all",)
    timeout_s: float | None = None
    cuda_runfile: Path | None = None
    split: str = "none"
    docker_hosts: tuple[str, ...] = ()
    baseline: ResultsFile | None = None
    tolerance_pct: float = DEFAULT_TOLERANCE_PCT
    save_baseline: Path | None = None
    reuse: bool = False
    submission_checks: str = "off"
    #: compliance tests (``TEST01``): one more item per benchmark×scenario, after its modes
    compliance: tuple[str, ...] = ()
    #: ``--mlperf-repeat``: LoadGen runs per performance item
    repeat: int = 1
    #: ``--mlperf-targets``: the file and its pinned targets, benchmark → scenario → values
    targets_file: Path | None = None
    targets: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
    #: ``--mlperf-ab``: the baseline and candidate variants and the rounds
    ab: AbSpec | None = None
    #: ``--mlperf-history*`` (None: off)
    history: HistorySettings | None = None

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


def split_list(value: str, option: str) -> list[str]:
    """Split a comma list; an empty list or empty element is an error naming the option."""
    parts = [p.strip() for p in value.split(",")]
    if not value.strip() or any(not p for p in parts):
        raise ConfigError(f"{option}: empty value or empty list element in {value!r}")
    return parts


def _choice(spec: OptionSpec, value: str) -> str:
    key = value.strip().lower()
    if key not in spec.choices:
        raise ConfigError(f"{spec.cli}: invalid value {value!r}; valid: {', '.join(spec.choices)}")
    return key


def _scenario(value: str, option: str) -> str:
    for name in SCENARIOS:
        if value.lower() == name.lower():
            return name
    raise ConfigError(f"{option}: unknown scenario {value!r}; valid: {', '.join(SCENARIOS)}")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pytest-mlperf`` or ``~/.cache/pytest-mlperf``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-mlperf"


def parse_run_config(
    get: RawGetter, catalog: Catalog, backend_names: Sequence[str], rootdir: Path
) -> RunConfig:
    """Build a :class:`RunConfig`; raises :class:`ConfigError` naming the bad value."""
    raw = {spec.name: get(spec) for spec in OPTIONS}
    # Items are generated when the user says what to run; settings alone (cache, results
    # dir, thresholds, fast, backend...) only configure the fixtures and the backend; the
    # plugin also enables them for node ids and for options given with no test path.
    enabled = any(raw[name] is not None for name in SELECTION_OPTIONS)

    def text(spec: OptionSpec) -> str | None:
        value = raw[spec.name]
        if value is None or isinstance(value, bool):
            return spec.default if value is None else str(value)
        return value

    by_name = {s.name: s for s in OPTIONS}
    config_ver_value = text(by_name["config_ver"])
    config_ver = (
        None if config_ver_value is None else _choice(by_name["config_ver"], config_ver_value)
    )
    mode = _choice(by_name["mode"], text(by_name["mode"]) or "performance")
    modes = RUN_MODES if mode == "all" else (mode,)

    bench_value = text(by_name["benchmarks"])
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

    scen_value = text(by_name["scenarios"])
    wanted = None
    if scen_value is not None:
        wanted = list(
            dict.fromkeys(
                _scenario(s, "--mlperf-scenarios")
                for s in split_list(scen_value, "--mlperf-scenarios")
            )
        )
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

    backend = (text(by_name["backend"]) or "auto").strip().lower()
    valid_backends = ["auto", *backend_names]
    if backend not in valid_backends:
        raise ConfigError(
            f"--mlperf-backend: unknown backend {backend!r}; valid: {', '.join(valid_backends)}"
        )

    fast_raw = raw["fast"]
    fast = fast_raw is True or (isinstance(fast_raw, str) and _truthy(fast_raw, "mlperf_fast"))

    results_dir = checked_path(
        text(by_name["results_dir"]) or "mlperf-results", "--mlperf-results-dir"
    ).expanduser()
    if not results_dir.is_absolute():
        results_dir = rootdir / results_dir
    existing = next(p for p in (results_dir, *results_dir.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(
            f"--mlperf-results-dir: {str(results_dir)!r} cannot be a directory: {str(existing)!r} is a file"
        )
    thresholds_value = text(by_name["thresholds"])
    thresholds_file = None
    if thresholds_value:
        thresholds_file = checked_path(thresholds_value, "--mlperf-thresholds").expanduser()
        if not thresholds_file.is_absolute():
            thresholds_file = rootdir / thresholds_file
        if not thresholds_file.is_file():
            raise ConfigError(f"--mlperf-thresholds: file {thresholds_value!r} does not exist")
    cache_value = text(by_name["cache_dir"])
    cache_dir = (
        checked_path(cache_value, "--mlperf-cache-dir").expanduser()
        if cache_value
        else default_cache_dir()
    )

    threads_value = text(by_name["threads"])
    threads = None
    if threads_value is not None:
        try:
            threads = int(threads_value)
        except ValueError:
            threads = -1
        if threads < 1:
            raise ConfigError(f"--mlperf-threads: {threads_value!r} is not a positive integer")
        if threads > available_cpus():
            raise ConfigError(
                f"--mlperf-threads: {threads_value!r} is more than the {available_cpus()} CPUs "
                f"available to this process; valid: 1 to {available_cpus()}"
            )

    system = text(by_name["system"])
    nvidia = _nvidia_options(text, by_name, rootdir)
    tolerance_pct = parse_tolerance(text(by_name["tolerance"]) or "5")
    baseline = _baselines(text(by_name["baseline"]), rootdir)
    save_text = text(by_name["save_baseline"])
    save_baseline = _path(save_text, rootdir, "--mlperf-save-baseline")
    if save_baseline is not None and save_text and save_text.endswith(("/", os.sep)):
        save_baseline = save_baseline / "results.json"  # a directory, maybe not there yet
    if save_baseline is not None and save_baseline.parent.is_file():
        raise ConfigError(
            f"--mlperf-save-baseline: {str(save_baseline.parent)!r} is a file, not a directory"
        )
    targets_file = _path(text(by_name["targets"]), rootdir, "--mlperf-targets")
    targets = _targets(targets_file, variants) if targets_file else None
    ab = parse_ab(
        text(by_name["ab"]),
        text(by_name["ab_rounds"]),
        "reference" if backend == "auto" else backend,
        variants,
        available_cpus(),
    )
    if ab is not None and _repeat(text(by_name["repeat"])) > 1:
        raise ConfigError(
            "--mlperf-repeat: --mlperf-ab runs its own rounds (--mlperf-ab-rounds); give one"
        )
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
        calibrate=_choice(by_name["calibrate"], text(by_name["calibrate"]) or "on") == "on",
        threads=threads,
        baseline=baseline,
        tolerance_pct=tolerance_pct,
        save_baseline=save_baseline,
        submission_checks=_choice(
            by_name["submission_checks"], text(by_name["submission_checks"]) or "off"
        ),
        compliance=_compliance(text(by_name["compliance"]), variants, catalog, backend),
        repeat=_repeat(text(by_name["repeat"])),
        targets_file=targets_file,
        targets=targets,
        ab=ab,
        history=parse_history_settings(
            text(by_name["history"]),
            text(by_name["history_ref"]),
            text(by_name["history_compare"]),
            text(by_name["history_window"]),
            results_dir,
            rootdir,
            significance=text(by_name["history_significance"]),
        ),
        reuse=raw["reuse"] is True
        or (isinstance(raw["reuse"], str) and _truthy(raw["reuse"], "mlperf_reuse")),
        **nvidia,  # type: ignore[arg-type]
    )


def _repeat(value: str | None) -> int:
    """``--mlperf-repeat``: a whole number from 1 to 100."""
    try:
        count = int(value or "1")
    except ValueError:
        count = 0
    if not 1 <= count <= 100:
        raise ConfigError(
            f"--mlperf-repeat: {value!r} is not a whole number of runs from 1 to 100 (e.g. 3)"
        )
    return count


def _baselines(value: str | None, rootdir: Path) -> ResultsFile | None:
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
        path = _path(part, rootdir, option)
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


def _targets(path: Path, variants: Sequence[Variant]) -> dict[str, dict[str, dict[str, float]]]:
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


def _compliance(
    value: str | None, variants: Sequence[Variant], catalog: Catalog, backend: str = "auto"
) -> tuple[str, ...]:
    if value is None:
        return ()
    if backend == "nvidia":
        from pytest_mlperf.backends.nvidia.run import TEST01_REFUSED

        raise ConfigError(f"--mlperf-compliance={value}: {TEST01_REFUSED}")
    from pytest_mlperf.compliance import parse_tests

    benches = list({v.family: catalog.benchmark(v.name) for v in variants}.values())
    return parse_tests(value, benches)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, else all)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _path(value: str | None, rootdir: Path, option: str) -> Path | None:
    if not value:
        return None
    path = checked_path(value, option).expanduser()
    return path if path.is_absolute() else rootdir / path


def _nvidia_options(
    text: Callable[[OptionSpec], str | None], by_name: Mapping[str, OptionSpec], rootdir: Path
) -> dict[str, object]:
    """The nvidia backend's options, validated here so mistakes are usage errors."""
    harness = _path(text(by_name["harness_dir"]), rootdir, "--mlperf-harness-dir")
    if harness is not None and not harness.is_dir():
        raise ConfigError(f"--mlperf-harness-dir: {str(harness)!r} is not a directory")
    devices_value = (text(by_name["devices"]) or "all").strip()
    devices: tuple[str, ...] | None
    if devices_value.lower() == "none":
        devices = None
    elif devices_value.lower() == "all":
        devices = ("all",)
    else:
        devices = tuple(split_list(devices_value, "--mlperf-devices"))
        bad = [d for d in devices if not (d.isdigit() or d.startswith(("MIG-", "GPU-")))]
        if bad:
            raise ConfigError(
                f"--mlperf-devices: invalid device {bad[0]!r}; valid: all, none, GPU indexes (0,1), "
                "GPU-<uuid> or MIG-<uuid>"
            )
    timeout_value = text(by_name["timeout"])
    timeout = None
    if timeout_value is not None:
        try:
            timeout = float(timeout_value)
        except ValueError:
            timeout = -1.0
        if not timeout > 0:
            raise ConfigError(
                f"--mlperf-timeout: {timeout_value!r} is not a positive number of seconds"
            )
        if not math.isfinite(timeout):
            raise ConfigError(
                f"--mlperf-timeout: {timeout_value!r} is not a finite number of seconds "
                "(no timeout at all is not an option; give a number)"
            )
    return {
        "harness_dir": harness,
        "scratch_path": _path(text(by_name["scratch_path"]), rootdir, "--mlperf-scratch-path"),
        "image": text(by_name["image"]),
        "container": text(by_name["container"]),
        "provision": _choice(by_name["provision"], text(by_name["provision"]) or "off"),
        "devices": devices,
        "timeout_s": timeout,
        "cuda_runfile": _path(text(by_name["cuda_runfile"]), rootdir, "--mlperf-cuda-runfile"),
        "split": _choice(by_name["split"], text(by_name["split"]) or "none"),
        "docker_hosts": _docker_hosts(text(by_name["docker_host"])),
    }


def _docker_hosts(value: str | None) -> tuple[str, ...]:
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


def _truthy(value: str, name: str) -> bool:
    key = value.strip().lower()
    if key in ("1", "true", "yes", "on"):
        return True
    if key in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: invalid boolean {value!r}; valid: true, false")
