"""The harness's own answers (which system is this?) and its engines, built once.

v4.1's ``make run`` is ``generate_engines`` then ``run_harness`` (``Makefile``) and never
reuses an engine (``code/actionhandler/generate_engines.py``), so we call the two targets
ourselves: ``generate_engines`` once per distinct engine in preparation, ``run_harness`` per
item. An engine is reused across sessions while nothing that shapes it changed: the harness
commit, the image, the system id the harness detected, the benchmark, scenario and
config_ver, and the generated custom definitions it was built with.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_mlperf.backends.nvidia.container import ExecResult, HarnessContainer
from pytest_mlperf.backends.nvidia.custom_system import (
    CUSTOM_SUFFIX,
    GENERATED_CONFIG_VERS,
    GENERATED_MARK,
    STUB,
    SystemSpec,
    config_text,
    custom_list_text,
    custom_system_id,
    load_systems,
    match_system,
    passthrough_text,
    system_entry,
    text_digest,
)
from pytest_mlperf.backends.nvidia.harness import NO_CONFIG, UNKNOWN_SYSTEM, run_args
from pytest_mlperf.backends.nvidia.resolve import (
    CUSTOM_VAR,
    ERROR,
    RESOLVED,
    SILENT,
    Resolution,
    parse_probe,
    probe_argv,
    request,
)
from pytest_mlperf.backends.nvidia.resolve import NO_CONFIG as UNREGISTERED
from pytest_mlperf.errors import BackendError
from pytest_mlperf.host.commands import CommandResult
from pytest_mlperf.host.probe import (
    SMI_QUERY,
    HostRecord,
    parse_smi_csv,
    probe_cpu,
)

#: ``python3 -m scripts.get_system_id`` prints the harness's MATCHED_SYSTEM (``scripts/get_system_id.py``).
DETECT = ["python3", "-m", "scripts.get_system_id"]
BUILT, REUSED, SKIPPED = "built", "reused", "skipped"
#: the engines directory (code/common/harness.py): the builder picks the file name itself
#: (seen: build/engines/<system id>/<benchmark>/<Scenario>/<name>...<config_ver>.plan)
ENGINES_DIR = "build/engines"
#: seconds one ``make generate_engines`` may take (--mlperf-timeout overrides): v4.1 builds
#: bert and 3d-unet engines in minutes; an hour means something hangs
GENERATE_TIMEOUT_S = 3600.0


@dataclass
class EngineState:
    """One distinct engine: what preparation did about it."""

    benchmark: str
    scenario: str
    config_ver: str
    action: str = "pending"
    reason: str = ""
    seconds: float = 0.0
    key: str = ""
    system_id: str = ""
    #: "harness" (its own config) or the generated custom.py it was built with
    config: str = "harness"
    #: the config class the harness resolved (module.Class), and its effective values
    config_class: str = ""
    resolved: dict[str, Any] = field(default_factory=dict)
    #: the plan files the build wrote (found after it), relative to the checkout
    plans: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``bert Offline default``."""
        return f"{self.benchmark} {self.scenario} {self.config_ver}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the preparation record and the item's settings."""
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data


def generate_args(benchmark: str, scenario: str, config_ver: str) -> str:
    """RUN_ARGS for ``make generate_engines`` (no test mode: an engine serves both)."""
    return f"--benchmarks={benchmark} --scenarios={scenario} --config_ver={config_ver}"


class HarnessEngines:
    """System detection, generated custom definitions and engines for one container.

    ``MLPINF_CUSTOM_DEFINITION_PATH`` is set only for the calls that need it: all of them for
    a custom system, else those on a pair with a generated config. With it set the harness
    looks up ``custom_systems.custom_list`` there (``code/common/systems/system_list.py``) and
    imports only ``custom_configs/<b>/<S>/custom.py`` (``configs/configuration.py``), so both
    are always written before such a call: an empty custom list, and a custom.py that
    imports the harness's own configs for the pair.
    """

    def __init__(
        self,
        container: HarnessContainer,
        scratch: str,
        identity: Sequence[str],
        progress: Callable[[str], None],
        systems: Callable[[], list[SystemSpec]] = load_systems,
        timeout_s: float | None = None,
    ) -> None:
        self.timeout_s = timeout_s or GENERATE_TIMEOUT_S
        self.container = container
        self.progress = progress
        self.identity = list(identity)
        self._systems = systems
        base = posixpath.join(scratch, ".pytest-mlperf")
        tag = hashlib.sha256("\0".join(self.identity).encode()).hexdigest()[:16]
        #: MLPINF_CUSTOM_DEFINITION_PATH: outside the checkout, per harness commit and image
        self.custom_dir = posixpath.join(base, "custom", tag)
        self.markers = posixpath.join(base, "engines")
        self.files: dict[str, str] = {}
        self.system_id: str | None = None
        self.custom_system: str | None = None
        self.spec: SystemSpec | None = None
        self.record: HostRecord | None = None
        self.states: dict[tuple[str, str, str], EngineState] = {}
        self.resolutions: dict[tuple[str, str, str], Resolution] = {}
        #: every answer of the probe per group (generate_engines, then run_harness per mode)
        self.answers: dict[tuple[str, str, str], list[Resolution]] = {}

    # -- the custom definition directory -----------------------------------------------------
    def generated(self, benchmark: str, scenario: str) -> bool:
        """A custom.py of ours registers configs for this pair."""
        return GENERATED_MARK in self.files.get(self._rel(benchmark, scenario), "")

    def environment_for(
        self, benchmark: str | None = None, scenario: str | None = None
    ) -> dict[str, str]:
        """The harness's environment for a call on one pair (None: no pair, e.g. detection)."""
        needed = self.custom_system is not None or (
            benchmark is not None and scenario is not None and self.generated(benchmark, scenario)
        )
        return {CUSTOM_VAR: self.custom_dir} if needed else {}

    @property
    def environment(self) -> dict[str, str]:
        """The environment of calls on no particular pair."""
        return self.environment_for()

    def _prepare_custom_path(self, benchmark: str, scenario: str) -> None:
        """Before a call with the variable set: the custom list and the pair's custom.py."""
        if "custom_systems/custom_list.py" not in self.files:
            # system_list.py: with the variable set, find_spec("custom_systems.custom_list")
            # there; without the file no custom system, but every import fails later with
            # ModuleNotFoundError: No module named 'custom_systems' (seen on a built-in system)
            self._write("custom_systems/custom_list.py", custom_list_text(self._stub(), ""))
        rel = self._rel(benchmark, scenario)
        if rel not in self.files:
            self._write(rel, passthrough_text(benchmark, scenario))

    @staticmethod
    def _rel(benchmark: str, scenario: str) -> str:
        return f"custom_configs/{benchmark}/{scenario}/custom.py"

    def _stub(self) -> str | None:
        stub = self.container.exec(["cat", STUB.as_posix()])
        return "\n".join(stub.tail) if stub.exit_code == 0 else None

    def _load_files(self) -> None:
        manifest = self.container.exec(["cat", posixpath.join(self.custom_dir, "manifest.json")])
        if manifest.exit_code != 0:
            return
        try:
            names = json.loads("\n".join(manifest.tail))
        except ValueError:
            return
        for rel in names if isinstance(names, list) else []:
            got = self.container.exec(["cat", posixpath.join(self.custom_dir, str(rel))])
            if got.exit_code == 0:
                self.files[str(rel)] = "\n".join(got.tail).rstrip("\n") + "\n"

    def _write(self, rel: str, text: str) -> None:
        path = posixpath.join(self.custom_dir, rel)
        made = self.container.exec(["mkdir", "-p", posixpath.dirname(path)])
        if made.exit_code != 0:
            raise BackendError(f"cannot create {posixpath.dirname(path)}: {made.tail_text(5)}")
        self.container.put_file(path, text.encode())
        self.files[rel] = text
        manifest = json.dumps(sorted(self.files)).encode()
        self.container.put_file(posixpath.join(self.custom_dir, "manifest.json"), manifest)

    # -- detection ---------------------------------------------------------------------------
    def _exec(
        self,
        argv: Sequence[str],
        timeout: float | None = None,
        environment: dict[str, str] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> ExecResult:
        env = self.environment if environment is None else environment
        return self.container.exec(argv, environment=env, timeout=timeout, on_line=on_line)

    def _matched(self) -> str | None:
        result = self._exec(DETECT)
        lines = [line.strip() for line in result.tail if line.strip()]
        if result.exit_code != 0 or not lines:
            raise BackendError(
                f"the harness's system detection ({' '.join(DETECT)}) failed with exit code "
                f"{result.exit_code}:\n{result.tail_text(10)}"
            )
        answer = lines[-1]
        if answer == "None":
            return None
        if not answer.startswith("KnownSystem."):
            raise BackendError(f"unexpected answer from {' '.join(DETECT)}: {answer!r}")
        return answer.removeprefix("KnownSystem.")

    def _in_container(self, argv: Sequence[str]) -> CommandResult:
        """Run ``argv`` in the harness container, as the host probe's runner."""
        done = self.container.exec(list(argv))
        return CommandResult(tuple(argv), done.exit_code, "\n".join(done.tail), "")

    def container_facts(self) -> HostRecord:
        """GPUs, CPU and memory as the harness sees them: inside its container."""
        record = HostRecord()
        smi = self.container.exec(SMI_QUERY)
        if smi.exit_code == 0:
            try:
                record.gpus = parse_smi_csv("\n".join(smi.tail))
                record.gpu_source = "nvidia-smi in the container"
            except ValueError as exc:
                record.errors.append(f"nvidia-smi: {exc}")
        probe_cpu(record, self._in_container)
        return record

    def detect(self) -> str:
        """The system id the harness matches; an unknown system gets our custom one."""
        self._load_files()
        self.record = self.container_facts()
        self.spec = match_system(self.record, self._systems())
        listing = self.files.get("custom_systems/custom_list.py", "")
        ours = [s for s in self._systems() if custom_system_id(s) in listing]
        if ours:  # a custom system of an earlier session: the harness finds it only with it
            self.custom_system = custom_system_id(ours[0])
        matched = self._matched()
        if matched is None:
            self.custom_system = None
            matched = self._add_custom_system()
        elif not matched.endswith(CUSTOM_SUFFIX):
            self.custom_system = None
        self.system_id = matched
        self.progress(f"harness system detection: KnownSystem.{matched}")
        return matched

    def _add_custom_system(self) -> str:
        record, spec = self.record or HostRecord(), self.spec
        gpus = (
            f"{len(record.gpus)}x {', '.join(record.gpu_names)}" if record.gpus else "no GPU seen"
        )
        if spec is None:
            known = ", ".join(f"{s.gpu_count}x {s.gpu_name}" for s in self._systems())
            raise BackendError(
                f"the harness says {UNKNOWN_SYSTEM!r} ({gpus}, CPU {record.cpu_model or 'unknown'}) "
                f"and no benchmarks/systems/*.json describes these GPUs (described: {known}); add "
                "one (schema system: GPU name as NVML reports it, count, configs) so pytest-mlperf "
                "generates a custom system"
            )
        system_id = custom_system_id(spec)
        self._write(
            "custom_systems/custom_list.py",
            custom_list_text(self._stub(), system_entry(spec, record, system_id)),
        )
        self.progress(
            f"custom system {system_id} ({gpus}, CPU {record.cpu_model}) written to "
            f"{self.custom_dir} (MLPINF_CUSTOM_DEFINITION_PATH)"
        )
        self.custom_system = system_id
        matched = self._matched()
        if matched != system_id:
            self.custom_system = None
            raise BackendError(
                f"the harness still does not match this machine after custom system {system_id} "
                f"was written to {self.custom_dir}: it says {matched!r}"
            )
        return system_id

    # -- config resolution (the harness's own, see resolve.py) --------------------------------
    def resolve(
        self,
        groups: Sequence[tuple[str, str, str]],
        run_modes: Sequence[str] = (),
        quick: str | None = None,
    ) -> dict[tuple[str, str, str], Resolution]:
        """What the harness resolves each (benchmark, scenario, config_ver) to, writing a config
        from our system data where it has none; a silent skip or an error is a BackendError.

        Each group is asked as ``generate_engines`` and, per mode in ``run_modes``, as
        ``run_harness`` with the RUN_ARGS an item passes (``run_args``)."""
        if self.system_id is None:
            self.detect()
        todo = [g for g in dict.fromkeys(groups) if g not in self.resolutions]
        if not todo:
            return {g: self.resolutions[g] for g in groups}
        answers = self._probe(todo, run_modes, quick)
        missing: dict[tuple[str, str], list[str]] = {}
        for group in todo:
            first = answers[group][0]
            if first.status == UNREGISTERED and group[2] in GENERATED_CONFIG_VERS:
                missing.setdefault(group[:2], []).append(group[2])
        retry = [g for g in todo if self._generate_config(g[:2], missing.get(g[:2], []), g[2])]
        if retry:
            answers.update(self._probe(retry, run_modes, quick))
        for group in todo:
            self.answers[group] = answers[group]
            self.resolutions[group] = self._judge(group, answers[group])
        return {g: self.resolutions[g] for g in groups}

    def _probe(
        self, groups: Sequence[tuple[str, str, str]], run_modes: Sequence[str], quick: str | None
    ) -> dict[tuple[str, str, str], list[Resolution]]:
        requests = []
        for b, s, cv in groups:
            env = self.environment_for(b, s)
            if env:
                self._prepare_custom_path(b, s)
            custom = env.get(CUSTOM_VAR)
            requests.append(request(b, s, cv, generate_args(b, s, cv), "generate_engines", custom))
            for mode in run_modes:
                args = run_args(b, s, mode, cv, quick)
                requests.append(request(b, s, cv, args, "run_harness", custom))
        lines: list[str] = []
        result = self._exec(probe_argv(requests), timeout=600, on_line=lines.append)
        out = parse_probe(lines)
        if result.exit_code != 0 or out is None or len(out.resolutions) != len(requests):
            raise BackendError(
                f"the harness's config resolution (code.main, in the container) failed with exit "
                f"code {result.exit_code}:\n{result.tail_text(15)}"
            )
        answers: dict[tuple[str, str, str], list[Resolution]] = {}
        for res in out.resolutions:
            answers.setdefault((res.benchmark, res.scenario, res.config_ver), []).append(res)
        return answers

    def _generate_config(
        self, pair: tuple[str, str], config_vers: list[str], config_ver: str
    ) -> bool:
        """Write our config for ``pair`` (once, for every config_ver it lacks); True: ask again."""
        if not config_vers or config_ver not in config_vers:
            return False
        values = self.spec.configs.get(pair[0], {}).get(pair[1]) if self.spec else None
        if values is None or self.system_id is None:
            return False
        rel = self._rel(*pair)
        text = config_text(self.system_id, pair[0], pair[1], values, config_vers)
        if self.files.get(rel) != text:
            if self.generated(*pair):  # an earlier session's config lacked another config_ver
                text = config_text(self.system_id, pair[0], pair[1], values, GENERATED_CONFIG_VERS)
            self._write(rel, text)
            assert self.spec is not None
            self.progress(
                f"the harness has no config for {pair[0]} {pair[1]} ({', '.join(config_vers)}) on "
                f"{self.system_id}; generated one from {self.spec.source.name} in {self.custom_dir}"
            )
        return True

    def _judge(self, group: tuple[str, str, str], answers: list[Resolution]) -> Resolution:
        b, s, cv = group
        where = f"{b} {s} {cv} on {self.system_id}"
        for res in answers:
            if res.status == ERROR:
                raise BackendError(f"the harness rejects {where} ({res.action}): {res.message}")
            if res.status == SILENT:
                raise BackendError(f"{where}: {res.message}")
        res = answers[0]
        odd = [a for a in answers if a.status != res.status]
        if odd:
            raise BackendError(
                f"{where}: the harness resolves generate_engines ({res.status}) and "
                f"{odd[0].action} ({odd[0].status}: {odd[0].message}) differently"
            )
        if res.status == RESOLVED:
            return res
        # "No registered config": skipped, with the harness's words and why we have none
        if self.generated(b, s) and cv in GENERATED_CONFIG_VERS:
            res.message = (
                f"the harness ignored the generated config for {b} {s} on {self.system_id} "
                f"({self.custom_dir}): {res.message}"
            )
        elif cv not in GENERATED_CONFIG_VERS:
            res.message = (
                f"the harness has no {cv} config for {b} {s} on {self.system_id} "
                f"({res.message!r}); a generated config can only stand for "
                f"{', '.join(GENERATED_CONFIG_VERS)}"
            )
        else:
            source = (
                self.spec.source.name
                if self.spec
                else "no benchmarks/systems/*.json matches these GPUs"
            )
            res.message = (
                f"the harness has no config for {b} {s} on {self.system_id} ({res.message!r}) "
                f"and our system data has none either ({source})"
            )
        return res

    # -- engines -----------------------------------------------------------------------------
    def _key(self, state: EngineState) -> str:
        texts = [self.files.get("custom_systems/custom_list.py", "")] if self.custom_system else []
        if self.environment_for(state.benchmark, state.scenario):
            texts.append(self.files.get(self._rel(state.benchmark, state.scenario), ""))
        parts = [
            *self.identity,
            str(self.system_id),
            state.benchmark,
            state.scenario,
            state.config_ver,
            text_digest(*texts),
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]

    def _marker(self, state: EngineState) -> str:
        return posixpath.join(self.markers, f"{state.key}.json")

    def _reusable(self, state: EngineState) -> bool:
        """A marker of this engine, and every plan it names still there."""
        got = self.container.exec(["cat", self._marker(state)])
        if got.exit_code != 0:
            return False
        try:
            plans = json.loads("\n".join(got.tail)).get("plans") or []
        except (ValueError, AttributeError):
            return False
        if not plans:
            return False
        check = self.container.exec(
            ["sh", "-c", 'for f; do test -f "$f" || exit 1; done', "-", *plans]
        )
        if check.exit_code != 0:
            return False
        state.plans = [str(p) for p in plans]
        return True

    def ensure(self, benchmark: str, scenario: str, config_ver: str) -> EngineState:
        """Build this engine unless a matching one exists; or say why it cannot be built."""
        found = self.states.get((benchmark, scenario, config_ver))
        if found is not None:
            return found
        group = (benchmark, scenario, config_ver)
        res = self.resolve([group])[group]
        state = EngineState(benchmark, scenario, config_ver, system_id=str(self.system_id))
        self.states[group] = state
        if res.status != RESOLVED:
            state.action, state.reason = SKIPPED, res.message
            self.progress(f"engine {state.label}: skipped: {res.message}")
            return state
        state.config_class = res.config_class or ""
        state.resolved = dict(res.config)
        if res.generated:
            state.config = posixpath.join(self.custom_dir, self._rel(benchmark, scenario))
        state.key = self._key(state)
        if self._reusable(state):
            state.action = REUSED
            self.progress(
                f"engine {state.label} ({self.system_id}): reused {', '.join(state.plans)}"
            )
            return state
        self._generate(state)
        return state

    def _plans(self) -> dict[str, str]:
        """Every plan file under build/engines with its modification time (nanoseconds)."""
        listing = self.container.exec(
            [
                "sh",
                "-c",
                'find "$0" -name "*.plan" 2>/dev/null | while read -r f; do stat -c "%y|%n" "$f"; done',
                ENGINES_DIR,
            ]
        )
        plans = {}
        for line in listing.tail:
            stamp, sep, path = line.partition("|")
            if sep and path.endswith(".plan"):
                plans[path] = stamp
        return plans

    def _generate(self, state: EngineState) -> None:
        args = generate_args(state.benchmark, state.scenario, state.config_ver)
        env = self.environment_for(state.benchmark, state.scenario)
        if env:
            self._prepare_custom_path(state.benchmark, state.scenario)
        before = self._plans()
        self.progress(f"engine {state.label}: make generate_engines RUN_ARGS='{args}'")
        result = self._exec(
            ["make", "generate_engines", f"RUN_ARGS={args}"],
            timeout=self.timeout_s,
            environment=env,
        )
        state.seconds += result.seconds
        text = result.tail_text(400)
        if result.timed_out:
            raise BackendError(
                f"make generate_engines for {state.label} timed out after "
                f"{self.timeout_s:g} s and was stopped:\n{result.tail_text(15)}"
            )
        if result.exit_code != 0:
            raise BackendError(
                f"make generate_engines for {state.label} failed with exit code "
                f"{result.exit_code}:\n{result.tail_text(15)}"
            )
        for words in (UNKNOWN_SYSTEM, NO_CONFIG):
            if words in text:
                raise BackendError(
                    f"make generate_engines for {state.label}: the harness says {words!r} although "
                    f"its own config resolution found {state.config_class} before:\n{result.tail_text(10)}"
                )
        # what the build wrote: the builder names the file (code/common/fields.py config_ver,
        # code/bert/tensorrt/builder.py), so look, never predict
        after = self._plans()
        where = f"/{state.benchmark}/{state.scenario}/"
        plans = sorted(p for p, stamp in after.items() if before.get(p) != stamp and where in p)
        if not plans:
            raise BackendError(
                f"make generate_engines for {state.label} exited 0 but wrote no plan under "
                f"{ENGINES_DIR}/*{where} (the harness said nothing about why):\n{result.tail_text(10)}"
            )
        state.plans = plans
        self.container.exec(["mkdir", "-p", self.markers])
        self.container.put_file(self._marker(state), json.dumps(state.to_dict()).encode())
        state.action = BUILT
        self.progress(f"engine {state.label}: built {', '.join(plans)} in {state.seconds:.1f} s")
