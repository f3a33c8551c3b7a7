"""The pytest entry point: options, hooks registration and the session object. Glue only."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlperf.backends import BUILTIN_BACKENDS, auto_backend
from pytest_mlperf.catalog import RUN_MODES, SCENARIOS, Catalog, default_dirs, load_catalog
from pytest_mlperf.config import (
    OPTIONS,
    ItemSpec,
    OptionSpec,
    RunConfig,
    option_value,
    parse_run_config,
)
from pytest_mlperf.errors import ConfigError, DataError
from pytest_mlperf.identity import parse_selection
from pytest_mlperf.stash import RUN_CONFIG_KEY, SESSION_KEY, SPECS_KEY, USER_THRESHOLDS_KEY
from pytest_mlperf.thresholds import (
    Threshold,
    ThresholdTable,
    check_baseline,
    check_thresholds,
    load_thresholds,
    shipped_threshold_files,
)

if TYPE_CHECKING:
    from pytest_mlperf.backends.base import Backend

__all__ = [
    "mlperf_backend",
    "mlperf_host",
    "mlperf_result",
    "mlperf_run",
]
#: Systems known before a backend is made (a plugin backend's: once it is prepared).
STATIC_SYSTEMS = {"reference": "reference-cpu"}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register pytest-mlperf's own hooks."""
    from pytest_mlperf import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--mlperf-*`` options, each with a matching ``mlperf_*`` ini key."""
    group = parser.getgroup("mlperf", "MLPerf Inference benchmarks (pytest-mlperf)")
    for spec in OPTIONS:
        dest = spec.ini
        if spec.flag:
            group.addoption(spec.cli, action="store_true", default=None, dest=dest, help=spec.help)
            parser.addini(spec.ini, spec.help, type="bool", default=None)
        else:
            metavar = "|".join(spec.choices) if spec.choices else spec.name.upper()
            group.addoption(spec.cli, default=None, dest=dest, metavar=metavar, help=spec.help)
            parser.addini(spec.ini, spec.help, type="string", default=None)
    group.addoption(
        "--mlperf-compare",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        default=None,
        dest="mlperf_compare",
        help="Print a side-by-side table of two runs' results (results.json, a run dir or a "
        "results dir: its newest finished run) and exit; runs nothing.",
    )
    group.addoption(
        "--mlperf-doctor",
        action="store_true",
        default=False,
        dest="mlperf_doctor",
        help="Preflight: check this host for the selected benchmarks (system, GPU architecture, "
        "disk, Docker, NVIDIA runtime, fabric manager, rootless Docker, proxies), print one "
        "table and exit (1 when a check fails); builds and runs nothing.",
    )
    group.addoption(
        "--mlperf-dry-run",
        action="store_true",
        default=False,
        dest="mlperf_dry_run",
        help="nvidia backend: run the harness's own system detection and config resolution "
        "in its container for every selected item, print per item the system id, config, "
        "engine and make command, and exit (1 when the harness would reject or silently skip "
        "one); builds and runs nothing.",
    )


def _raw_getter(config: pytest.Config) -> Any:
    def get(spec: OptionSpec) -> str | bool | None:
        value = config.getoption(spec.ini)
        if value is not None:
            return value  # type: ignore[no-any-return]
        # registered with default=None: None means "not set" (no deprecated config.inicfg)
        ini = config.getini(spec.ini)
        if ini is None:
            return None
        if spec.flag:
            return bool(ini)
        return None if ini == "" else str(ini)

    return get


def _load(config: pytest.Config) -> tuple[RunConfig, Catalog, ThresholdTable]:
    """Parse options and data once per process; errors name the bad value."""
    if RUN_CONFIG_KEY in config.stash:
        return config.stash[RUN_CONFIG_KEY]
    extra_dirs = [
        Path(p) for group in config.hook.pytest_mlperf_benchmark_dirs(config=config) for p in group
    ]
    catalog = load_catalog([*default_dirs(), *extra_dirs])
    names = list(
        dict.fromkeys(n for group in config.hook.pytest_mlperf_backend_names() for n in group)
    )
    run_config = parse_run_config(_raw_getter(config), catalog, names, config.rootpath)
    nodeids = node_id_args(config)
    enabled = run_config.enabled or bool(nodeids) or _options_without_paths(config)
    run_config = dataclasses.replace(run_config, enabled=enabled)
    config.stash[SPECS_KEY] = item_specs(run_config, catalog, nodeids)
    levels = [load_thresholds(path) for path in shipped_threshold_files()]
    user: list[Threshold] = []
    if run_config.thresholds_file is not None:
        user = load_thresholds(run_config.thresholds_file)
        check_thresholds(user, catalog, run_config.system)  # the system again in configure
        levels.append(user)
    if run_config.baseline is not None:
        check_baseline(run_config.baseline, catalog, "--mlperf-baseline")
    if enabled and run_config.history is not None and run_config.history.judge:
        from pytest_mlperf.history.settings import check_store

        check_store(run_config.history.location)  # unreachable or damaged: exit 4, now
    thresholds = ThresholdTable(levels)
    config.stash[USER_THRESHOLDS_KEY] = user
    config.stash[RUN_CONFIG_KEY] = (run_config, catalog, thresholds)
    return config.stash[RUN_CONFIG_KEY]


def node_id_args(config: pytest.Config) -> list[str]:
    """Take generated items' node ids (``mlperf``, ``mlperf::bert-99``,
    ``mlperf::bert-99[Server-performance]``) out of the test paths, so that pytest does not
    look for them as files; kept in ``config.option`` (xdist hands it to its workers)."""
    here = config.invocation_params.dir

    def is_node_id(arg: str) -> bool:  # a real file or directory named mlperf stays a path
        return parse_selection(arg) is not None and not (here / arg).exists()

    taken: list[str] | None = getattr(config.option, "mlperf_nodeids", None)
    if taken is None:
        taken = [a for a in config.args if is_node_id(a)]
        config.option.mlperf_nodeids = taken
    config.args[:] = [a for a in config.args if a not in taken]
    return taken


#: Modifiers that, on the command line with no test path at all, run the default selection.
RUN_MODIFIERS = ("fast", "backend", "config_ver")


def _options_without_paths(config: pytest.Config) -> bool:
    """A run modifier on the command line and no test path at all (nor ``testpaths``):
    ``pytest --mlperf-fast`` runs the default selection; ``pytest test_mine.py --mlperf-fast``
    only configures the fixtures of test_mine.py. Settings (cache, results dir...) and ini
    values never generate items."""
    if config.args_source != pytest.Config.ArgsSource.INVOCATION_DIR:
        return False
    return any(config.getoption(f"mlperf_{name}") is not None for name in RUN_MODIFIERS)


def item_specs(run_config: RunConfig, catalog: Catalog, nodeids: list[str]) -> list[ItemSpec]:
    """The selection's items, or with node ids exactly the items they name (in their order).

    A node id names a variant by its full name and a scenario it defines; raises
    :class:`ConfigError` naming the bad part and the valid values.
    """
    if not nodeids:
        return run_config.items()
    selection = run_config.items()
    specs: list[ItemSpec] = []
    for nodeid in nodeids:
        selected = parse_selection(nodeid)
        assert selected is not None  # node_id_args took only matching ones
        name, scenario, mode = selected
        if name is None:
            found = selection
        else:
            if name not in catalog.variant_names:
                raise ConfigError(
                    f"{nodeid}: unknown benchmark {name!r} (a node id names the variant); "
                    f"valid: {', '.join(catalog.variant_names)}"
                )
            variant = catalog.variant(name)
            bench = catalog.benchmark(name)
            defined = tuple(bench.scenarios)
            if scenario is None:
                found = [s for s in selection if s.variant == variant] or [
                    ItemSpec(variant, sc, m, run_config.config_ver_for(variant))
                    for sc in defined
                    for m in run_config.modes
                ]
            else:
                if scenario not in defined:
                    raise ConfigError(
                        f"{nodeid}: {name} does not define {scenario!r}; valid for it: "
                        f"{', '.join(defined)}"
                    )
                modes = (*RUN_MODES, *(bench.raw.get("compliance") or {}))
                if mode is None or mode not in modes:  # the pattern gives both or neither
                    raise ConfigError(f"{nodeid}: unknown mode {mode!r}; valid: {', '.join(modes)}")
                config_ver = run_config.config_ver_for(variant)
                if config_ver not in variant.config_vers:
                    raise ConfigError(
                        f"{nodeid}: {name} does not run with --mlperf-config-ver "
                        f"{config_ver!r}; valid for it: {', '.join(variant.config_vers)}"
                    )
                found = [ItemSpec(variant, scenario, mode, config_ver)]
        specs.extend(s for s in found if s not in specs)
    return specs


def _compare(config: pytest.Config, runs: list[str]) -> int:
    """``--mlperf-compare RUN_A RUN_B``: print the table, run nothing."""
    from pytest_mlperf.baseline import parse_tolerance
    from pytest_mlperf.compare import compare_text

    tolerance = option_value(_raw_getter(config), "tolerance")
    here = config.invocation_params.dir
    try:
        lines = compare_text(
            here / runs[0],
            here / runs[1],
            parse_tolerance(str(tolerance)),
            "--mlperf-compare",
        )
    except (ConfigError, DataError) as exc:
        raise pytest.UsageError(str(exc)) from exc
    print("\n".join(lines))
    return 0


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Validate every option before the session starts: bad input is a usage error (exit 4).

    ``--mlperf-compare`` prints its table and ends the session here.
    """
    if config.option.help or config.option.version:
        return None
    compare = config.getoption("mlperf_compare", None)
    if compare:
        return _compare(config, compare)
    try:
        run_config = _load(config)[0]
        _fleet(config)
    except (ConfigError, DataError) as exc:
        raise pytest.UsageError(str(exc)) from exc
    if config.getoption("mlperf_doctor", False):
        return _doctor(config)
    if run_config.enabled and not config.option.collectonly:
        from pytest_mlperf.results.store import unwritable_problem

        problem = unwritable_problem(run_config.results_dir)
        if problem:  # e.g. a read-only mount: say so before anything runs
            raise pytest.UsageError(f"--mlperf-results-dir: {problem}")
    return None


def _fleet(config: pytest.Config) -> None:
    """Fleet options (docs/fleet.md): with ``--mlperf-slurm-nodes``, the xdist ``--tx`` specs."""
    from pytest_mlperf.xdist_hooks import configure_fleet

    by_name = {s.name: s for s in OPTIONS}
    get = _raw_getter(config)
    # the fleet's srun defaults follow the backend the workers will run: auto resolved here
    configure_fleet(
        config, lambda name: session_backend(config) if name == "backend" else get(by_name[name])
    )


#: ``--mlperf-backend`` with ``auto`` resolved, once per process.
_BACKEND_KEY: pytest.StashKey[str] = pytest.StashKey()


def session_backend(config: pytest.Config) -> str:
    """The backend this session runs: ``--mlperf-backend``, or for ``auto`` the
    ``pytest_mlperf_auto_backend`` hook's answer (its default: :func:`auto_backend`)."""
    if _BACKEND_KEY not in config.stash:
        name = config.stash[RUN_CONFIG_KEY][0].backend
        if name == "auto":
            name = config.hook.pytest_mlperf_auto_backend(config=config) or "reference"
        config.stash[_BACKEND_KEY] = name
    return config.stash[_BACKEND_KEY]


def _doctor(config: pytest.Config) -> int:
    """``--mlperf-doctor``: print the preflight table, run nothing; 1 when a check fails."""
    from pytest_mlperf.doctor import doctor_input, doctor_table, exit_code, run_doctor

    lines = run_doctor(doctor_input(config.stash[RUN_CONFIG_KEY][0]))
    print("\n".join(doctor_table(lines)))
    return exit_code(lines)


def pytest_configure(config: pytest.Config) -> None:
    """Register markers and, when any mlperf option is set, the session object."""
    config.addinivalue_line(
        "markers",
        "mlperf(benchmark, scenario, mode='performance', config_ver=None, fast=None, "
        "max_latency_ms=None, min_samples_per_second=None, **overrides): a pytest-mlperf item, "
        "or a hand-written test whose mlperf_result fixture runs this benchmark",
    )
    for scenario in SCENARIOS:
        config.addinivalue_line("markers", f"{scenario}: MLPerf {scenario} scenario items")
    for mode in RUN_MODES:
        config.addinivalue_line("markers", f"{mode}: MLPerf {mode}-mode items")
    config.addinivalue_line("markers", "compliance: MLPerf compliance-test items (TEST01)")
    config.addinivalue_line("markers", "TEST01: MLPerf compliance TEST01 items")
    if config.option.help or config.option.version:
        return
    try:
        run_config, catalog, thresholds = _load(config)
    except (ConfigError, DataError) as exc:
        raise pytest.UsageError(str(exc)) from exc
    for name in (*catalog.families, *catalog.variant_names):
        config.addinivalue_line("markers", f"{name}: pytest-mlperf items of {name}")
    # Always registered (it is cheap: nothing is probed or built until an item or fixture
    # needs the backend), so the fixtures work without any --mlperf-* option; items are
    # generated only when an option or ini value enables them.
    from pytest_mlperf.report_hooks import HtmlHooks
    from pytest_mlperf.session import MlperfSession
    from pytest_mlperf.xdist_hooks import XdistHooks

    backend_name = session_backend(config)
    if run_config.ab is not None:  # checked again now that "auto" is resolved
        from pytest_mlperf.abtest import check_backend

        try:
            check_backend(backend_name)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from exc
    system = run_config.system or STATIC_SYSTEMS.get(backend_name)
    try:
        user: list[Threshold] = config.stash[USER_THRESHOLDS_KEY]
        check_thresholds(user, catalog, system)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    session = MlperfSession(config, run_config, catalog, thresholds, backend_name)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "mlperf-session")
    config.pluginmanager.register(session.terminal, "mlperf-terminal")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), "mlperf-xdist")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlHooks(config, session.index), "mlperf-html")


# -- default implementations of our own hooks (trylast: a conftest can override) ----------
@pytest.hookimpl(trylast=True)
def pytest_mlperf_backend_names() -> list[str]:
    """The backends built into pytest-mlperf."""
    return list(BUILTIN_BACKENDS)


@pytest.hookimpl(trylast=True)
def pytest_mlperf_auto_backend(config: pytest.Config) -> str | None:
    """nvidia when a harness dir is configured and the host shows GPUs, else reference."""
    from pytest_mlperf.host.probe import has_gpus

    return auto_backend(config.stash[RUN_CONFIG_KEY][0].harness_dir, has_gpus)[0]


@pytest.hookimpl(trylast=True)
def pytest_mlperf_make_backend(
    name: str, run_config: RunConfig, config: pytest.Config
) -> Backend | None:
    """Make a built-in backend."""
    if name == "reference":
        from pytest_mlperf.backends.reference import ReferenceBackend
        from pytest_mlperf.placement import cpu_set

        placement = config.stash[SESSION_KEY].placement
        return ReferenceBackend(
            run_config.cache_dir, run_config.calibrate, run_config.threads, cpus=cpu_set(placement)
        )
    if name == "nvidia":
        from pytest_mlperf.backends.nvidia import NvidiaBackend, NvidiaSettings
        from pytest_mlperf.backends.options import harness_options

        rc = run_config
        return NvidiaBackend(
            NvidiaSettings(
                **harness_options(rc),
                placement=config.stash[SESSION_KEY].placement,
                config_vers=tuple(dict.fromkeys(spec.config_ver for spec in rc.items())),
                engine_plan=tuple(
                    dict.fromkeys(
                        (spec.variant.family, spec.scenario, spec.config_ver) for spec in rc.items()
                    )
                ),
            )
        )
    return None


# -- fixtures (defined in fixtures.py; importing them here makes them the plugin's) --------
from pytest_mlperf.fixtures import mlperf_backend, mlperf_host, mlperf_result, mlperf_run  # noqa: E402
