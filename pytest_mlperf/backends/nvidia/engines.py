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
from dataclasses import asdict, dataclass
from typing import Any

from pytest_mlperf.backends.nvidia.custom_system import (
    GENERATED_CONFIG_VERS,
    STUB,
    SystemSpec,
    config_text,
    custom_list_text,
    custom_system_id,
    load_systems,
    match_system,
    system_entry,
    text_digest,
)
from pytest_mlperf.backends.nvidia.harness import NO_CONFIG, UNKNOWN_SYSTEM
from pytest_mlperf.container import ExecResult, HarnessContainer
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
    """System detection, generated custom definitions and engines for one container."""

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

    # -- the custom definition directory -----------------------------------------------------
    @property
    def environment(self) -> dict[str, str]:
        """The harness's environment: the custom route only when we wrote something."""
        return {"MLPINF_CUSTOM_DEFINITION_PATH": self.custom_dir} if self.files else {}

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
    def _exec(self, argv: Sequence[str], timeout: float | None = None) -> ExecResult:
        return self.container.exec(argv, environment=self.environment, timeout=timeout)

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
        matched = self._matched()
        if matched is None:
            matched = self._add_custom_system()
        elif matched.endswith("_PytestMlperf"):
            self.custom_system = matched
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
        stub = self.container.exec(["cat", STUB.as_posix()])
        stub_text = "\n".join(stub.tail) if stub.exit_code == 0 else None
        self._write(
            "custom_systems/custom_list.py",
            custom_list_text(stub_text, system_entry(spec, record, system_id)),
        )
        self.progress(
            f"custom system {system_id} ({gpus}, CPU {record.cpu_model}) written to "
            f"{self.custom_dir} (MLPINF_CUSTOM_DEFINITION_PATH)"
        )
        matched = self._matched()
        if matched != system_id:
            raise BackendError(
                f"the harness still does not match this machine after custom system {system_id} "
                f"was written to {self.custom_dir}: it says {matched!r}"
            )
        self.custom_system = system_id
        return system_id

    # -- engines -----------------------------------------------------------------------------
    def _key(self, state: EngineState) -> str:
        texts = [self.files.get("custom_systems/custom_list.py", "")] if self.custom_system else []
        texts.append(self.files.get(self._config_rel(state), ""))
        parts = [
            *self.identity,
            str(self.system_id),
            state.benchmark,
            state.scenario,
            state.config_ver,
            text_digest(*texts),
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]

    @staticmethod
    def _config_rel(state: EngineState) -> str:
        return f"custom_configs/{state.benchmark}/{state.scenario}/custom.py"

    def _engine_dir(self, state: EngineState) -> str:
        # code/common/harness.py: ./build/engines/<system_id>/<benchmark>/<Scenario>/
        return f"build/engines/{self.system_id}/{state.benchmark}/{state.scenario}"

    def _reusable(self, state: EngineState) -> bool:
        marker = posixpath.join(self.markers, f"{state.key}.json")
        check = self.container.exec(
            [
                "sh",
                "-c",
                'test -f "$0" && ls "$1"/*."$2".plan >/dev/null 2>&1',
                marker,
                self._engine_dir(state),
                state.config_ver,
            ]
        )
        return check.exit_code == 0

    def ensure(self, benchmark: str, scenario: str, config_ver: str) -> EngineState:
        """Build this engine unless a matching one exists; or say why it cannot be built."""
        found = self.states.get((benchmark, scenario, config_ver))
        if found is not None:
            return found
        if self.system_id is None:
            self.detect()
        state = EngineState(benchmark, scenario, config_ver, system_id=str(self.system_id))
        self.states[(benchmark, scenario, config_ver)] = state
        state.key = self._key(state)
        self._note_config(state)
        if self._reusable(state):
            state.action = REUSED
            self.progress(f"engine {state.label} ({self.system_id}): reused (marker {state.key})")
            return state
        self._generate(state)
        return state

    def _generate(self, state: EngineState) -> None:
        args = generate_args(state.benchmark, state.scenario, state.config_ver)
        wrote_config = False
        while True:
            self.progress(f"engine {state.label}: make generate_engines RUN_ARGS='{args}'")
            result = self._exec(
                ["make", "generate_engines", f"RUN_ARGS={args}"], timeout=self.timeout_s
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
            if UNKNOWN_SYSTEM in text:
                raise BackendError(
                    f"make generate_engines for {state.label}: the harness says {UNKNOWN_SYSTEM!r} "
                    "although its detection matched this machine before"
                )
            if NO_CONFIG not in text:
                break
            reason = self._no_config(state, wrote_config)
            if reason is not None:
                state.action, state.reason = SKIPPED, reason
                self.progress(f"engine {state.label}: skipped: {reason}")
                return
            wrote_config = True
            state.key = self._key(state)
            self._note_config(state)
        if not self._engine_written(state):
            raise BackendError(
                f"make generate_engines for {state.label} exited 0 but wrote no "
                f"*.{state.config_ver}.plan under {self._engine_dir(state)}:\n{result.tail_text(10)}"
            )
        marker = posixpath.join(self.markers, f"{state.key}.json")
        self.container.exec(["mkdir", "-p", self.markers])
        self.container.put_file(marker, json.dumps(state.to_dict()).encode())
        state.action = BUILT
        self.progress(f"engine {state.label}: built in {state.seconds:.1f} s")

    def _note_config(self, state: EngineState) -> None:
        rel = self._config_rel(state)
        if rel in self.files:
            state.config = posixpath.join(self.custom_dir, rel)

    def _engine_written(self, state: EngineState) -> bool:
        check = self.container.exec(
            [
                "sh",
                "-c",
                'ls "$0"/*."$1".plan >/dev/null 2>&1',
                self._engine_dir(state),
                state.config_ver,
            ]
        )
        return check.exit_code == 0

    def _no_config(self, state: EngineState, wrote_config: bool) -> str | None:
        """Write a config for a missing system × scenario, or the reason it cannot be run."""
        where = f"{state.benchmark} {state.scenario} on {self.system_id}"
        if wrote_config:
            return f"the harness ignored the generated config for {where} ({self.custom_dir})"
        spec = self.spec
        values = spec.configs.get(state.benchmark, {}).get(state.scenario) if spec else None
        if values is None:
            source = spec.source.name if spec else "no benchmarks/systems/*.json matches these GPUs"
            return (
                f"the harness has no config for {where} ({NO_CONFIG!r}) and our system data has "
                f"none either ({source})"
            )
        if state.config_ver not in GENERATED_CONFIG_VERS:
            return (
                f"the harness has no {state.config_ver} config for {where}; a generated config "
                f"can only stand for {', '.join(GENERATED_CONFIG_VERS)}"
            )
        assert spec is not None and self.system_id is not None
        self._write(
            self._config_rel(state),
            config_text(self.system_id, state.benchmark, state.scenario, values),
        )
        self.progress(
            f"engine {state.label}: the harness has no config for {where}; generated one from "
            f"{spec.source.name} in {self.custom_dir}"
        )
        return None
