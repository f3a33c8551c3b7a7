"""NvidiaBackend: probe and check the host, build/launch the harness container, run items."""

from __future__ import annotations

import platform
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.backends.base import (
    AccuracyData,
    AccuracyProvider,
    DeviceList,
    DeviceLocks,
    DryRunner,
    PerformanceQslAccuracy,
    PrepareOrder,
    Progress,
    RunOutcome,
    RunRequest,
)
from pytest_mlperf.backends.nvidia import ab, launch
from pytest_mlperf.backends.nvidia.container import (
    ContainerSpec,
    ExecResult,
    HarnessContainer,
    engine_errors,
    image_key,
)
from pytest_mlperf.backends.nvidia.custom_system import load_systems, match_system
from pytest_mlperf.backends.nvidia.engines import SKIPPED, EngineState, HarnessEngines
from pytest_mlperf.backends.nvidia.harness import (
    QuickFlag,
    detect_quick_flag,
    engine_inputs,
    harness_commit,
    read_metadata,
    run_args,
    tensorrt_info,
)
from pytest_mlperf.backends.nvidia.run import (
    MOUNT_GONE,
    fetch_logs,
    metadata_check,
    raise_for_exit,
    refuse_unsupported,
    result_dir,
)
from pytest_mlperf.backends.nvidia.stages import run_stages
from pytest_mlperf.backends.options import HarnessOptions
from pytest_mlperf.catalog import Benchmark
from pytest_mlperf.checks import Check
from pytest_mlperf.errors import BackendError, BackendSkip
from pytest_mlperf.host.checks import check_host, describe_failures, failed
from pytest_mlperf.host.commands import Runner, run_command
from pytest_mlperf.host.plan import (
    apply_plan,
    load_host_requirements,
    plan_provisioning,
    probe_provisioning_state,
)
from pytest_mlperf.host.probe import SMI_QUERY, HostRecord, parse_smi_csv, probe_host
from pytest_mlperf.placement import Placement, mig_uuids
from pytest_mlperf.results.store import atomic_write_text


@dataclass(frozen=True, kw_only=True)
class NvidiaSettings(HarnessOptions):
    """What the nvidia backend needs: the run's :class:`HarnessOptions`, and where it runs."""

    dockerfile: str = f"docker/Dockerfile.{platform.machine()}"
    placement: Placement = field(default_factory=Placement)
    #: the session's config_vers: Triton is built only when one of them needs it
    config_vers: tuple[str, ...] = ("default",)
    #: every (benchmark, scenario, config_ver) the session's items need, accuracy-only ones
    #: too; None: the prepare plan × config_vers
    engine_plan: tuple[tuple[str, str, str], ...] | None = None

    @property
    def want_gpus(self) -> bool:
        """False with ``--mlperf-devices=none`` (containers without GPUs, e.g. tests)."""
        return self.devices is not None


class NvidiaBackend(
    PrepareOrder, DeviceLocks, DeviceList, PerformanceQslAccuracy, AccuracyProvider, DryRunner
):
    """NVIDIA's closed-division harness in its container: engines generated once in
    preparation (``make generate_engines``), one ``make run_harness`` per item."""

    name = "nvidia"
    #: accuracy mode runs the data set the performance QSL holds: a compliance test may
    #: compare its audit run with the session's accuracy item (same qsl_idx, same sample)
    accuracy_runs_performance_qsl = True
    #: Host, image, container and staged steps are per host: one process prepares at a time.
    serial_prepare = True
    #: ``--mlperf-ab``: a side may use another image or checkout; ``ab_identity()``: which
    ab_keys, ab_identity = ab.AB_KEYS, ab.identity

    def __init__(
        self,
        settings: NvidiaSettings,
        runner: Runner = run_command,
        docker_client: Callable[[], Any] | None = None,
        nvml_loader: Callable[[], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.runner = runner
        host = settings.placement.docker_host
        self._docker_factory = docker_client or (lambda: launch.docker_client(host))
        #: what ``prepare`` actually did (image built, container launched, steps run, provisioning)
        self.work_done: list[str] = []
        self.devices: list[str] | None = None
        self._cspec: ContainerSpec | None = None
        self._nvml_loader = nvml_loader
        self.host: HostRecord | None = None
        self.requirements: list[Check] = []
        self.container: HarnessContainer | None = None
        self.quick: QuickFlag | None = None
        self.info: dict[str, Any] = {}
        self._system: str | None = None
        self.engines: HarnessEngines | None = None
        self._preparing = False

    # -- protocol ---------------------------------------------------------------------------
    def system_name(self) -> str:
        """``--mlperf-system``, else the matched system data name, else GPU name × count."""
        if self.settings.system:
            return self.settings.system
        return self._system or "unknown-nvidia-system"

    def supported_config_vers(self) -> Sequence[str]:
        """All four; whether a system has a config for each is the harness's call."""
        return ("default", "high_accuracy", "triton", "triton_high_accuracy")

    def host_record(self) -> HostRecord:
        """What the probe found in ``prepare`` (empty before it)."""
        return self.host or HostRecord()

    def describe(self) -> dict[str, Any]:
        """The host record, the requirement verdicts, the image and container."""
        data: dict[str, Any] = {"backend": self.name}
        if self.host is not None:
            data.update(self.host.to_dict())
        data["requirements"] = [r.requirement_dict() for r in self.requirements]
        data["work_done"] = list(self.work_done)
        data.update(self.info)
        return data

    @property
    def _engine(self) -> str:
        return self.settings.placement.docker_host or "(DOCKER_HOST or the local socket)"

    def prepare(self, plan: Sequence[tuple[Benchmark, str]], progress: Progress) -> None:
        """Probe, (provision), check; then image, container and the staged harness steps."""
        with engine_errors(self._engine):
            self._prepare(plan, progress)

    def run(self, request: RunRequest, progress: Progress) -> RunOutcome:
        """``make run`` for one item; a container that died since is relaunched first."""
        with engine_errors(self._engine):
            self._ensure_running(progress)
            return self._run(request, progress)

    def _relaunch(self, progress: Progress, why: str) -> None:
        """Replace the container (same spec, mount sources looked up again)."""
        assert self.container is not None and self._cspec is not None
        from dataclasses import replace

        if self._cspec.mount_ids:
            self._cspec = replace(
                self._cspec, mount_ids=launch.mount_ids([Path(p) for p in self._cspec.mount_ids])
            )
        action = self.container.ensure_container(self._cspec)
        progress(f"container {self._cspec.name}: {action} mid-session ({why})")
        self.info["container_action"] = f"{action} mid-session"
        self.work_done.append(f"{action} container {self._cspec.name} mid-session ({why})")

    def _ensure_running(self, progress: Progress) -> None:
        if self.container is None or self.container.is_running():
            return
        if self._cspec is None:
            raise BackendError(f"container {self.settings.container!r} is no longer running")
        action = self.container.ensure_container(self._cspec)
        progress(f"container {self._cspec.name}: {action} mid-session (it had stopped)")
        self.info["container_action"] = f"{action} mid-session"
        self.work_done.append(f"{action} container {self._cspec.name} mid-session")

    def _prepare(self, plan: Sequence[tuple[Benchmark, str]], progress: Progress) -> None:
        s = self.settings
        self._probe_and_check(progress)
        if s.container is None and (s.harness_dir is None or not s.harness_dir.is_dir()):
            raise BackendError(
                f"--mlperf-harness-dir: {s.harness_dir} is not a directory (closed/NVIDIA)"
            )
        if s.scratch_path is None:
            raise BackendError(
                "--mlperf-scratch-path is required: the harness keeps data, models and engines there"
            )
        client = self._docker_factory()
        self.container = HarnessContainer(client, progress)
        if s.container is not None:
            self.container.attach(s.container)
            self.info["container"] = s.container
            self.info["container_action"] = "attached"
        else:
            assert s.harness_dir is not None
            self._launch(s.harness_dir, s.scratch_path, progress)
        # the image's content ID, not only its tag: a rebuilt image under the same tag is
        # another provenance
        self.info.update(self.container.image_identity())
        self.info.update(tensorrt_info(self.container))  # a fingerprint field; none: left out
        self.quick = (
            detect_quick_flag(s.harness_dir)
            if s.harness_dir
            else QuickFlag("--test_run", "no harness dir")
        )
        self.info["quick_flag"] = self.quick.flag
        self.info["quick_flag_reason"] = self.quick.reason
        self._stages(sorted({bench.name for bench, _ in plan}), s.scratch_path, progress)
        self._prepare_engines(plan, s.scratch_path, progress)

    def _prepare_engines(
        self, plan: Sequence[tuple[Benchmark, str]], scratch: Path, progress: Progress
    ) -> None:
        """Detect the system the harness's own way, then build each distinct engine once."""
        self.engines = self._harness_engines(scratch, progress, self.settings.timeout_s)
        self._preparing = True
        system_id = self.engines.detect()
        self.info["harness_system_id"] = system_id
        if self.engines.custom_system:
            self.info["custom_system"] = {
                "system_id": self.engines.custom_system,
                "definition_path": self.engines.custom_dir,
                "source": str(self.engines.spec.source) if self.engines.spec else None,
            }
        if self._system is None and not self.settings.system:
            self._system = self.engines.spec.name if self.engines.spec else system_id
        groups = dict.fromkeys(
            self.settings.engine_plan
            or [(b.name, scenario, cv) for b, scenario in plan for cv in self.settings.config_vers]
        )
        try:
            # one call of the harness's own config resolution for every engine (seconds)
            self.engines.resolve(list(groups))
            for group in groups:
                self._engine_for(*group)
        finally:
            self._preparing = False

    def _harness_engines(
        self, scratch: Path, progress: Progress, timeout_s: float | None = None
    ) -> HarnessEngines:
        """The engines of this checkout and image: keyed by its commit, its uncommitted
        changes to what engines are built from, and the image's content ID."""
        assert self.container is not None
        if self.settings.harness_dir is not None:
            self.info["harness_changes"] = engine_inputs(self.settings.harness_dir)
        identity = [
            str(self.info.get("harness_commit", "attached")),
            str(self.info.get("harness_changes", "unknown")),
            str(self.info.get("image_id")),
        ]
        return HarnessEngines(
            self.container, str(scratch.resolve()), identity, progress, timeout_s=timeout_s
        )

    def _engine_for(self, benchmark: str, scenario: str, config_ver: str) -> EngineState:
        """The engine's state, built now when preparation did not (e.g. accuracy-only plans)."""
        assert self.engines is not None
        known = (benchmark, scenario, config_ver) in self.engines.states
        if not known and not self._preparing and self.settings.placement.split != "none":
            # outside the prepare lock another worker may be loading this engine
            raise BackendError(
                f"engine {benchmark} {scenario} {config_ver} was not generated in preparation; "
                "with --mlperf-split no worker builds one outside the prepare lock"
            )
        state = self.engines.ensure(benchmark, scenario, config_ver)
        if not known:
            self.info["engines"] = [st.to_dict() for st in self.engines.states.values()]
            if state.action == "built":
                self.work_done.append(
                    f"built engine {state.label} for {state.system_id} in {state.seconds:.1f} s"
                )
        return state

    def _probe_and_check(self, progress: Progress) -> None:
        s = self.settings
        remote = s.placement.docker_host is not None
        kwargs: dict[str, Any] = {
            "runner": self.runner,
            "docker_client": self._docker_factory,
            # a remote engine's GPUs are probed inside its container, after launch
            "want_gpus": s.want_gpus and not remote,
        }
        if self._nvml_loader is not None:
            kwargs["nvml_loader"] = self._nvml_loader
        self.host = probe_host(**kwargs)
        if s.provision in ("plan", "apply"):
            target = load_host_requirements()
            held, has_cuda = probe_provisioning_state(self.runner, str(target["cuda_version"]))
            steps = plan_provisioning(self.host, target, held, has_cuda, s.cuda_runfile)
            for step in steps:
                progress(
                    f"provision plan: [{'done' if step.done else 'todo'}] {step.name}: {step.render()}  # {step.why}"
                )
            self.info["provision_plan"] = [
                {"name": st.name, "argv": list(st.argv), "done": st.done, "why": st.why}
                for st in steps
            ]
            if s.provision == "apply":
                seconds = apply_plan(steps, self.runner, progress)
                self.info["provision_seconds"] = round(seconds, 3)
                self.work_done += [f"provisioned {st.name}" for st in steps if not st.done]
                if any(not st.done for st in steps):
                    self.host = probe_host(**kwargs)
        self.requirements = check_host(self.host, want_gpus=s.want_gpus and not remote)
        for req in self.requirements:
            progress(f"host check {req.name}: {'ok' if req.ok else 'FAILED'} ({req.value})")
        spec = match_system(self.host, load_systems())
        if spec is not None:
            self._system = spec.name
        elif self.host.gpus:
            self._system = f"{self.host.gpu_names[0]}x{len(self.host.gpus)}".replace(" ", "_")
        if failed(self.requirements):
            raise BackendError("host not ready: " + describe_failures(self.requirements))

    def dry_run(self, items: Sequence[tuple[str, str, str, str]], progress: Progress) -> list[str]:
        """``--mlperf-dry-run``: the harness's own system detection and config resolution for
        each (benchmark, scenario, mode, config_ver), in its container; nothing is built (an
        image must exist already), no harness step or engine build runs. A config the harness
        rejects or a pair it would skip silently is a BackendError in its words."""
        from pytest_mlperf.backends.nvidia.dryrun import DryItem, dry_run, format_rows

        with engine_errors(self._engine):
            s = self.settings
            self._probe_and_check(progress)
            if s.scratch_path is None:
                raise BackendError("--mlperf-scratch-path is required (custom definitions)")
            self.container = HarnessContainer(self._docker_factory(), progress)
            if s.container is not None:
                self.container.attach(s.container)
            else:
                if s.harness_dir is None or not s.harness_dir.is_dir():
                    raise BackendError(f"--mlperf-harness-dir: {s.harness_dir} is not a directory")
                self._launch(s.harness_dir, s.scratch_path, progress, build_image=False)
            self.info.update(self.container.image_identity())
            self.quick = (
                detect_quick_flag(s.harness_dir) if s.harness_dir else QuickFlag("--test_run", "")
            )
            self.engines = self._harness_engines(s.scratch_path, progress)
            self.engines.detect()
            wanted = [DryItem(b, sc, cv, mode) for b, sc, mode, cv in items]
            return format_rows(dry_run(self.engines, wanted, self.quick.flag))

    def _launch(
        self, harness_dir: Path, scratch: Path, progress: Progress, build_image: bool = True
    ) -> None:
        """The image, then the container from it (reused when it matches its spec)."""
        s = self.settings
        assert self.container is not None and self.host is not None
        commit = harness_commit(harness_dir)
        tag = self._image(harness_dir, commit, build_image)
        self.info["harness_commit"] = commit
        self.info["image"] = tag
        gpus = self._devices()
        cspec = self._container_spec(harness_dir, scratch, tag, gpus)
        self._cspec = cspec
        action = self.container.ensure_container(cspec)
        self.info.update(
            image=tag, harness_commit=commit, container=cspec.name, container_action=action
        )
        self.info.update(
            devices=gpus, docker_host=s.placement.docker_host, worker=s.placement.worker
        )
        if self.info.get("image_built"):
            self.work_done.append(f"built image {tag}")
        if action != "reused":
            self.work_done.append(f"{action} container {cspec.name}")
        if s.placement.docker_host is not None and s.want_gpus:
            self._probe_gpus_in_container()

    def _image(self, harness_dir: Path, commit: str, build_image: bool) -> str:
        """``--mlperf-image`` (it must exist), else the checkout's Dockerfile's image, built
        when missing (``build_image`` False: the dry run builds nothing)."""
        assert self.container is not None
        s = self.settings
        if s.image:
            self.container.require_image(s.image)
            return s.image
        dockerfile = harness_dir / s.dockerfile
        if not dockerfile.is_file():
            raise BackendError(
                f"no Dockerfile at {dockerfile}: pass --mlperf-image with a pre-built harness "
                "image. v4.1 ships only docker/release/Dockerfile (BuildKit build contexts, an "
                "nvcr.io base image), which `make prebuild` (Makefile.docker) builds; "
                "pytest-mlperf does not build that one itself"
            )
        tag = f"pytest-mlperf/harness:{image_key(dockerfile, dockerfile.parent, commit)}"
        if not build_image:
            self.container.require_image(tag)
        else:
            self.info["image_built"] = self.container.ensure_image(
                tag, dockerfile, dockerfile.parent
            )
        return tag

    def _container_spec(
        self, harness_dir: Path, scratch: Path, tag: str, gpus: list[str] | None
    ) -> ContainerSpec:
        """The harness container: the checkout at /work, the scratch path, our build/."""
        s = self.settings
        assert self.host is not None
        local = s.placement.docker_host is None
        name = launch.container_name(harness_dir, gpus, s.placement.split, s.image)
        build = launch.build_dir(harness_dir, scratch, local, s.image)
        self.info["harness_build_dir"] = str(build)
        return ContainerSpec(
            image=tag,
            name=name,
            mounts={
                str(harness_dir.resolve()): "/work",
                str(scratch.resolve()): str(scratch.resolve()),
                # everything the harness writes lives under build/ (Makefile.const BUILD_DIR:
                # links, binaries, loadgen-configs, engines, logs): ours is in the scratch
                # path, so the checkout stays as the user left it
                str(build): "/work/build",
            },
            environment={"MLPERF_SCRATCH_PATH": str(scratch.resolve())},
            # NVIDIA's launch passes --user (Makefile.docker): the harness's files in the
            # checkout (build/) belong to the invoking user, so plain `make` still works there
            user=launch.uid_gid(),
            # a checkout re-created at the same path is another mount source: a container
            # still holding the old one fails every exec (exit 126), so it is relaunched
            mount_ids=launch.mount_ids([harness_dir, scratch]) if local else {},
            gpus=gpus,
            nvidia_runtime=gpus is not None and "nvidia" in self.host.docker_runtimes,
        )

    def _devices(self) -> list[str] | None:
        """This worker's GPUs or MIG slices (``--mlperf-devices`` / ``--mlperf-split``)."""
        s = self.settings
        if s.devices is None:
            return None
        if s.placement.split == "none":
            return list(s.devices)
        if s.placement.split == "mig":
            listing = self.runner(["nvidia-smi", "-L"])
            pool = mig_uuids(listing.stdout) if listing.ok else []
            if s.devices != ("all",):
                pool = [d for d in pool if d in s.devices]
            what = "MIG devices"
        else:
            assert self.host is not None
            pool = (
                [str(g.index) for g in self.host.gpus] if s.devices == ("all",) else list(s.devices)
            )
            what = "GPUs"
        self.devices = s.placement.share(pool, what)
        return self.devices

    def lock_devices(self) -> list[str]:
        """The device locks one measurement holds: one per GPU (or MIG slice) it runs on.

        "Every GPU" is spelled out GPU by GPU, and a GPU named by UUID becomes its index,
        so a session on all GPUs and a split worker on GPU 1 exclude each other on
        ``gpu-1``. ``gpu-all`` only when the host's GPUs are unknown (no probe answered).
        """
        gpus = self.host.gpus if self.host is not None else []
        by_uuid = {g.uuid: str(g.index) for g in gpus}
        chosen = self.devices if self.devices is not None else self._devices()
        if chosen is None or "all" in chosen:
            if not gpus:
                return ["gpu-all"]
            return [f"gpu-{g.index}" for g in gpus]
        return [f"gpu-{by_uuid.get(d, d)}" for d in chosen]

    def _probe_gpus_in_container(self) -> None:
        """For a remote engine: ``nvidia-smi`` inside the launched container."""
        assert self.container is not None and self.host is not None
        result = self.container.exec(SMI_QUERY)
        if result.exit_code == 0:
            self.host.gpus = parse_smi_csv("\n".join(result.tail))
            self.host.gpu_source = "nvidia-smi in the container"
        if not self.host.gpus:
            raise BackendError(
                f"no GPU visible in the container on {self.settings.placement.docker_host}: "
                f"{result.tail_text(5) or 'nvidia-smi failed'}"
            )

    def _stages(self, families: list[str], scratch: Path, progress: Progress) -> None:
        """The harness's setup steps, each skipped when its marker says it is done."""
        assert self.container is not None
        markers = f"{scratch.resolve()}/.pytest-mlperf/steps/{str(self.info.get('harness_commit', 'attached'))[:16]}"
        build_dir = self.info.get("harness_build_dir")
        checkout = f"-{Path(build_dir).name}" if build_dir else ""
        done = run_stages(
            self.container,
            families,
            markers,
            checkout,
            self.settings.config_vers,
            progress,
            self.work_done,
        )
        if done:
            progress(f"harness steps already done (markers in {markers}): {', '.join(done)}")
        self.info["stages_skipped"] = done

    def _run(self, request: RunRequest, progress: Progress) -> RunOutcome:
        """``make run`` for one item into its own LOG_DIR; a result from elsewhere is impossible."""
        if self.container is None or self.quick is None:
            raise BackendError("the nvidia backend was not prepared")
        refuse_unsupported(request)
        state = self._engine_for(request.benchmark.name, request.scenario, request.config_ver)
        if state.action == SKIPPED:
            raise BackendSkip(state.reason)
        quick = self.quick.flag if request.fast else None
        log_dir = request.outdir / "harness"
        args = run_args(
            request.benchmark.name, request.scenario, request.mode, request.config_ver, quick
        )
        timeout, timeout_source = self.timeout_for(request)
        progress(
            f"{request.variant.name} {request.scenario} {request.mode}: make run_harness "
            f"RUN_ARGS='{args}' (engine {state.action}; timeout {timeout:g} s from {timeout_source})"
        )
        result = self._run_harness(request, args, timeout, log_dir, progress)
        output = request.outdir / "harness-output.txt"
        atomic_write_text(output, "\n".join(result.tail) + "\n")
        raise_for_exit(result, timeout, timeout_source)
        found = result_dir(log_dir, request, result, state)
        metadata = read_metadata(found)
        return RunOutcome(
            log_dir=found,
            settings={
                "run_args": args,
                "log_dir": str(log_dir),
                "device": "none"
                if self.settings.devices is None
                else ",".join(self._devices() or []),
                "quick_flag": quick,
                "timeout_s": timeout,
                "timeout_source": timeout_source,
                "engine": state.action,
                "engine_key": state.key,
                "harness_system_id": state.system_id,
            },
            run_seconds=result.seconds,
            details={"harness_metadata": metadata, "harness_output": str(output)},
            compare=metadata_check(metadata, request.fast),
        )

    def _run_harness(
        self, request: RunRequest, args: str, timeout: float, log_dir: Path, progress: Progress
    ) -> ExecResult:
        """``make run_harness`` in a fresh directory inside the container (remote engines
        too), its logs fetched to ``log_dir`` through the Docker API even on Ctrl-C, so no
        result can come from elsewhere; relaunched once when its checkout mount is gone."""
        assert self.container is not None and self.engines is not None
        inner = f"/tmp/pytest-mlperf-logs/{uuid.uuid4().hex}"
        # the engine exists (built or reused in preparation): run_harness, not run
        argv = ["make", "run_harness", f"RUN_ARGS={args}", f"LOG_DIR={inner}"]
        env = self.engines.environment_for(request.benchmark.name, request.scenario)
        try:
            result = self.container.exec(argv, timeout=timeout, environment=env)
            if result.exit_code == 126 and MOUNT_GONE in result.tail_text(5):
                self._relaunch(progress, "its checkout mount was re-created")
                result = self.container.exec(argv, timeout=timeout, environment=env)
        finally:
            fetch_logs(self.container, inner, log_dir)
        return result

    def timeout_for(self, request: RunRequest) -> tuple[float, str]:
        """``--mlperf-timeout``, else the benchmark data's figure for this item."""
        if self.settings.timeout_s is not None:
            return self.settings.timeout_s, "--mlperf-timeout"
        return request.benchmark.harness_timeout(request.scenario, request.mode, request.fast)

    def accuracy_data(self, request: RunRequest, progress: Progress) -> AccuracyData | None:
        """A converted data set under ``<scratch>/pytest-mlperf/datasets/`` lets us recompute.

        ``bert.json`` (SQuAD features with token→word maps) or ``3d-unet.npz`` (label
        volumes), in the formats README's Accuracy section describes; without one, the
        harness's own figure (metadata.json) is judged alone.
        """
        if self.settings.scratch_path is None:
            return None
        base = self.settings.scratch_path / "pytest-mlperf" / "datasets"
        for name in (f"{request.benchmark.name}.json", f"{request.benchmark.name}.npz"):
            if (base / name).is_file():
                progress(f"{request.variant.name}: recomputing accuracy with {base / name}")
                return AccuracyData(dataset=base / name)
        return None

    def close(self) -> None:
        """The container stays up for the next session (reused when it matches)."""
