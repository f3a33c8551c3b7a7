"""The pytest entry point: options, hooks registration and the session object. Glue only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlperf.catalog import SCENARIOS, Catalog, default_dirs, load_catalog
from pytest_mlperf.config import OPTIONS, OptionSpec, RunConfig, parse_run_config
from pytest_mlperf.errors import ConfigError, DataError
from pytest_mlperf.thresholds import ThresholdTable, shipped_threshold_files

if TYPE_CHECKING:
    from pytest_mlperf.backends.base import Backend
    from pytest_mlperf.session import MlperfSession

RUN_CONFIG_KEY: pytest.StashKey[tuple[RunConfig, Catalog, ThresholdTable]] = pytest.StashKey()
SESSION_KEY: pytest.StashKey[MlperfSession] = pytest.StashKey()
BUILTIN_BACKENDS = ("reference", "nvidia")


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


def _raw_getter(config: pytest.Config) -> Any:
    def get(spec: OptionSpec) -> str | bool | None:
        value = config.getoption(spec.ini)
        if value is not None:
            return value  # type: ignore[no-any-return]
        if spec.ini in config.inicfg:
            ini = config.getini(spec.ini)
            if spec.flag:
                return bool(ini)
            return None if ini in (None, "") else str(ini)
        return None

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
    files = shipped_threshold_files()
    if run_config.thresholds_file is not None:
        files.append(run_config.thresholds_file)
    thresholds = ThresholdTable.load(files) if run_config.enabled else ThresholdTable([])
    config.stash[RUN_CONFIG_KEY] = (run_config, catalog, thresholds)
    return config.stash[RUN_CONFIG_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Validate every option before the session starts: bad input is a usage error (exit 4)."""
    if config.option.help or config.option.version:
        return
    try:
        _load(config)
    except (ConfigError, DataError) as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_configure(config: pytest.Config) -> None:
    """Register markers and, when any mlperf option is set, the session object."""
    config.addinivalue_line("markers", "mlperf: a pytest-mlperf benchmark item")
    for scenario in SCENARIOS:
        config.addinivalue_line("markers", f"{scenario}: MLPerf {scenario} scenario items")
    for mode in ("performance", "accuracy"):
        config.addinivalue_line("markers", f"{mode}: MLPerf {mode}-mode items")
    if config.option.help or config.option.version:
        return
    try:
        run_config, catalog, thresholds = _load(config)
    except (ConfigError, DataError) as exc:
        raise pytest.UsageError(str(exc)) from exc
    for name in (*catalog.families, *catalog.variant_names):
        config.addinivalue_line("markers", f"{name}: pytest-mlperf items of {name}")
    if not run_config.enabled:
        return
    from pytest_mlperf.session import HtmlHooks, MlperfSession, XdistHooks

    backend_name = run_config.backend
    if backend_name == "auto":
        backend_name = config.hook.pytest_mlperf_auto_backend(config=config) or "reference"
    session = MlperfSession(config, run_config, catalog, thresholds, backend_name)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "mlperf-session")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), "mlperf-xdist")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlHooks(session), "mlperf-html")


# -- default implementations of our own hooks (trylast: a conftest can override) ----------
@pytest.hookimpl(trylast=True)
def pytest_mlperf_backend_names() -> list[str]:
    """The backends built into pytest-mlperf."""
    return list(BUILTIN_BACKENDS)


@pytest.hookimpl(trylast=True)
def pytest_mlperf_auto_backend(config: pytest.Config) -> str | None:
    """nvidia when a harness dir is configured and the host shows GPUs, else reference."""
    run_config = config.stash[RUN_CONFIG_KEY][0]
    if run_config.harness_dir is None:
        return "reference"
    from pytest_mlperf.host.probe import has_gpus

    return "nvidia" if has_gpus() else "reference"


@pytest.hookimpl(trylast=True)
def pytest_mlperf_make_backend(
    name: str, run_config: RunConfig, config: pytest.Config
) -> Backend | None:
    """Make a built-in backend."""
    if name == "reference":
        from pytest_mlperf.backends.reference import ReferenceBackend

        return ReferenceBackend(run_config.cache_dir, run_config.calibrate, run_config.threads)
    if name == "nvidia":
        from pytest_mlperf.backends.nvidia import NvidiaBackend, NvidiaSettings

        rc = run_config
        return NvidiaBackend(
            NvidiaSettings(
                harness_dir=rc.harness_dir,
                scratch_path=rc.scratch_path,
                results_dir=rc.results_dir,
                image=rc.image,
                container=rc.container,
                provision=rc.provision,
                devices=rc.devices,
                timeout_s=rc.timeout_s,
                cuda_runfile=rc.cuda_runfile,
                system=rc.system,
            )
        )
    return None


# -- fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def mlperf_backend(pytestconfig: pytest.Config) -> Backend:
    """The session's prepared backend, shared with the generated items."""
    session = pytestconfig.stash.get(SESSION_KEY, None)
    if session is None:
        pytest.skip("pytest-mlperf is not enabled: set an --mlperf-* option or mlperf_* ini value")
    return session.backend()
