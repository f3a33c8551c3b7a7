"""The harness image and container through the Docker SDK: build/reuse, launch/reuse, exec."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.errors import BackendError

MANAGED_LABEL = "pytest-mlperf.managed"
KEY_LABEL = "pytest-mlperf.key"
#: How long a freshly launched container must stay up to count as started.
START_GRACE_S = 1.0
#: Capabilities added to Docker's default set: SYS_ADMIN, because NVIDIA's kernel driver
#: grants its privileged controls (vboost, power limits, MIG instances) only with it.
CAPABILITIES = ("SYS_ADMIN",)
#: seccomp: Docker's default profile refuses set_mempolicy, which the harness's NUMA
#: binding calls; both as NVIDIA's own container launch sets them.
SECURITY_OPTIONS = ("apparmor=unconfined", "seccomp=unconfined")
#: /dev/shm of a GPU container (Docker's default is 64 MB), as NVIDIA's launch sets it.
SHM_SIZE = "32g"
# Runs the command in its own session (setsid in a background job does not fork, so $! is
# the session and process-group id), records that id, and waits for the exit status, so a
# timeout or Ctrl-C can stop the whole process group. User values only ever travel as
# separate arguments ("$@"), never inside this text.
_WRAPPER = 'setsid "$@" & pid=$!; echo "$pid" > "$0"; wait "$pid"'
_KILLER = 'pid=$(cat "$0") && kill -TERM -- "-$pid" 2>/dev/null; sleep "$1"; kill -KILL -- "-$pid" 2>/dev/null; true'


@dataclass(frozen=True)
class ContainerSpec:
    """How the harness container must look; ``key`` changes whenever any of it does."""

    image: str
    name: str
    mounts: Mapping[str, str]
    file_mounts: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    gpus: Sequence[str] | None = None
    nvidia_runtime: bool = False
    workdir: str = "/work"
    #: ``uid:gid`` the container runs as (NVIDIA's launch passes ``--user``)
    user: str | None = None
    #: mount source → ``device:inode``: a re-created source means another container
    mount_ids: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A hash of everything that makes two containers interchangeable."""
        blob = repr(
            (
                self.image,
                sorted(self.mounts.items()),
                sorted(self.file_mounts.items()),
                sorted(self.environment.items()),
                None if self.gpus is None else tuple(self.gpus),
                self.nvidia_runtime,
                self.workdir,
                self.user,
                sorted(self.mount_ids.items()),
                (CAPABILITIES, SECURITY_OPTIONS, SHM_SIZE, "memlock=-1"),  # the launch flags
            )
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def launch_options(spec: ContainerSpec) -> dict[str, Any]:
    """The ``containers.run`` arguments for ``spec``; README "Container flags" says why each."""
    from docker.types import DeviceRequest, Ulimit

    volumes = {host: {"bind": inner, "mode": "rw"} for host, inner in spec.mounts.items()}
    volumes.update(
        {host: {"bind": inner, "mode": "ro"} for host, inner in spec.file_mounts.items()}
    )
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "name": spec.name,
        "command": ["tail", "-f", "/dev/null"],
        "detach": True,
        "labels": {MANAGED_LABEL: "true", KEY_LABEL: spec.key},
        "volumes": volumes,
        "environment": dict(spec.environment),
        "working_dir": spec.workdir,
        "cap_add": list(CAPABILITIES),
        # the host's network: what the harness downloads need, no NAT, and it works on
        # engines started without a default bridge (--bridge=none)
        "network_mode": "host",
        "security_opt": list(SECURITY_OPTIONS),
    }
    if spec.user is not None:
        kwargs["user"] = spec.user
    if spec.gpus is not None:
        kwargs["shm_size"] = SHM_SIZE
        kwargs["ulimits"] = [Ulimit(name="memlock", soft=-1, hard=-1)]
        if spec.nvidia_runtime:
            kwargs["runtime"] = "nvidia"
        if list(spec.gpus) == ["all"]:
            kwargs["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
        else:
            kwargs["device_requests"] = [
                DeviceRequest(device_ids=list(spec.gpus), capabilities=[["gpu"]])
            ]
    return kwargs


@dataclass
class ExecResult:
    """How an exec ended, with the tail of its output."""

    exit_code: int | None
    tail: list[str]
    seconds: float
    timed_out: bool = False

    def tail_text(self, lines: int = 30) -> str:
        """The last ``lines`` lines of output."""
        return "\n".join(self.tail[-lines:])


def image_key(dockerfile: Path, context: Path, harness_commit: str) -> str:
    """Image identity: the harness commit, the Dockerfile, and every file of its context."""
    digest = hashlib.sha256(harness_commit.encode())
    digest.update(dockerfile.read_bytes())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def engine_errors(engine: str) -> Iterator[None]:
    """Turn a Docker engine that stopped answering into a :class:`BackendError` naming it."""
    import docker.errors
    import requests

    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise BackendError(f"the Docker engine {engine} did not answer: {exc}") from exc


class HarnessContainer:
    """One harness container on one Docker engine."""

    def __init__(self, client: Any, progress: Callable[[str], None]) -> None:
        self.client = client
        self.progress = progress
        self.container: Any = None

    # -- image ------------------------------------------------------------------------------
    def ensure_image(self, tag: str, dockerfile: Path, context: Path) -> bool:
        """Build ``tag`` from ``dockerfile`` unless it exists; returns True when built."""
        import docker.errors

        try:
            self.client.images.get(tag)
            self.progress(f"image {tag}: reusing")
            return False
        except docker.errors.ImageNotFound:
            pass
        self.progress(f"image {tag}: building from {dockerfile}")
        tail: deque[str] = deque(maxlen=30)
        try:
            stream = self.client.api.build(
                path=str(context),
                dockerfile=str(dockerfile.relative_to(context)),
                tag=tag,
                rm=True,
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    raise BackendError(
                        f"building image {tag} failed: {chunk['error'].strip()}\n" + "\n".join(tail)
                    )
                text = str(chunk.get("stream", "")).rstrip()
                if text:
                    tail.append(text)
        except docker.errors.APIError as exc:
            raise BackendError(f"building image {tag} failed: {exc}") from exc
        self.client.images.get(tag)
        return True

    def require_image(self, tag: str) -> None:
        """A pre-built image must exist (no registry is contacted)."""
        import docker.errors

        try:
            self.client.images.get(tag)
        except docker.errors.ImageNotFound as exc:
            raise BackendError(
                f"image {tag!r} not found on the Docker engine (--mlperf-image)"
            ) from exc

    # -- container --------------------------------------------------------------------------
    def attach(self, name: str) -> None:
        """Use an existing, running container (``--mlperf-container``)."""
        import docker.errors

        try:
            container = self.client.containers.get(name)
        except docker.errors.NotFound as exc:
            raise BackendError(f"container {name!r} not found (--mlperf-container)") from exc
        if container.status != "running":
            raise BackendError(f"container {name!r} is {container.status}, not running")
        self.container = container

    def ensure_container(self, spec: ContainerSpec) -> str:
        """Reuse a matching running container, else (re)launch it. Returns what was done."""
        import docker.errors

        action = "launched"
        try:
            existing = self.client.containers.get(spec.name)
        except docker.errors.NotFound:
            existing = None
        if existing is not None:
            labels = existing.labels or {}
            if labels.get(MANAGED_LABEL) != "true":
                raise BackendError(
                    f"a container named {spec.name!r} exists that pytest-mlperf did not create; "
                    "remove it or pass it with --mlperf-container"
                )
            if labels.get(KEY_LABEL) == spec.key and existing.status == "running":
                self.container = existing
                self.progress(f"container {spec.name}: reusing (running, same settings)")
                return "reused"
            action = "relaunched"
            self.progress(
                f"container {spec.name}: relaunching (was {existing.status}, settings changed: {labels.get(KEY_LABEL) != spec.key})"
            )
            existing.remove(force=True)
        self.container = self._launch(spec)
        self.progress(f"container {spec.name}: {action} from {spec.image}")
        return action

    def _launch(self, spec: ContainerSpec) -> Any:
        import docker.errors

        kwargs = launch_options(spec)
        try:
            container = self.client.containers.run(**kwargs)
            self._survives_start(container, spec)
        except docker.errors.APIError as exc:
            raise BackendError(
                f"launching container {spec.name!r} from {spec.image!r} failed: {exc}"
            ) from exc
        return container

    def _survives_start(self, container: Any, spec: ContainerSpec) -> None:
        """Watch a fresh container for :data:`START_GRACE_S`: one that exits is an error.

        Right after ``run`` the status still says ``running`` for an entrypoint that fails a
        few milliseconds later, so one look is not enough; a reload every 0.1 s is cheap.
        """
        deadline = time.monotonic() + START_GRACE_S
        while True:
            container.reload()
            if container.status != "running" or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if container.status == "running":
            return
        state = container.attrs.get("State") or {}
        logs = container.logs(tail=30).decode(errors="replace").rstrip()
        raise BackendError(
            f"container {spec.name!r} from {spec.image!r} exited at once "
            f"({container.status}, exit code {state.get('ExitCode')}); kept for "
            f"`docker logs {spec.name}`; its last output:\n{logs or '(no output)'}"
        )

    def is_running(self) -> bool:
        """Whether the container is still up (it may have died or the engine restarted)."""
        if self.container is None:
            return False
        self.container.reload()
        return bool(self.container.status == "running")

    def remove(self) -> None:
        """Remove the container (tests and explicit cleanup only)."""
        if self.container is not None:
            self.container.remove(force=True)
            self.container = None

    # -- exec -------------------------------------------------------------------------------
    def exec(
        self,
        argv: Sequence[str],
        on_line: Callable[[str], None] | None = None,
        timeout: float | None = None,
        environment: Mapping[str, str] | None = None,
        workdir: str | None = None,
        grace_s: int = 10,
    ) -> ExecResult:
        """Run ``argv`` in the container, streaming lines; a timeout or Ctrl-C kills it."""
        import docker.errors

        if self.container is None:
            raise BackendError("no harness container")
        api = self.client.api
        pidfile = f"/tmp/pytest-mlperf-{uuid.uuid4().hex}.pid"
        wrapped = ["sh", "-c", _WRAPPER, pidfile, *argv]
        try:
            exec_id = api.exec_create(
                self.container.id, wrapped, environment=dict(environment or {}), workdir=workdir
            )["Id"]
            stream = api.exec_start(exec_id, stream=True)
        except docker.errors.APIError as exc:
            raise BackendError(f"cannot run {list(argv)} in the container: {exc}") from exc
        tail: deque[str] = deque(maxlen=400)
        failure: list[BaseException] = []
        start = time.monotonic()
        reader = threading.Thread(
            target=_pump, args=(stream, tail, on_line, failure), name="mlperf-exec", daemon=True
        )
        reader.start()
        timed_out = False
        try:
            while reader.is_alive():
                reader.join(0.2)
                if timeout is not None and time.monotonic() - start > timeout:
                    timed_out = True
                    self._kill(pidfile, grace_s)
                    reader.join(grace_s + 5)
                    break
        except KeyboardInterrupt:
            self._kill(pidfile, grace_s)
            raise
        seconds = time.monotonic() - start
        if failure and not timed_out:
            raise BackendError(f"lost the output of {list(argv)}: {failure[0]}")
        code = None if timed_out else api.exec_inspect(exec_id).get("ExitCode")
        return ExecResult(code, list(tail), seconds, timed_out)

    def _kill(self, pidfile: str, grace_s: int) -> None:
        """TERM the exec's process group, then KILL it after ``grace_s``."""
        self.client.api.exec_start(
            self.client.api.exec_create(
                self.container.id, ["sh", "-c", _KILLER, pidfile, str(grace_s)]
            )["Id"]
        )

    def fetch(self, path: str, dest: Path) -> bool:
        """Copy ``path`` out of the container into ``dest`` (Docker API archive); False if absent."""
        import tarfile
        import tempfile

        import docker.errors

        if self.container is None:
            return False
        try:
            chunks, _stat = self.container.get_archive(path)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            raise BackendError(f"cannot copy {path} out of the container: {exc}") from exc
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as spool:
            for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            with tarfile.open(fileobj=spool) as tar:
                # the archive's top entry is the directory itself: keep only its contents
                members = []
                for member in tar.getmembers():
                    _top, sep, rest = member.name.partition("/")
                    if sep and rest:
                        member.name = rest
                        members.append(member)
                tar.extractall(dest, members=members, filter="data")
        return True

    def image_identity(self) -> dict[str, Any]:
        """The running container's image: its content ID and registry digests (if pulled)."""
        if self.container is None:
            return {}
        image = self.container.image
        return {
            "image_id": str(image.id),
            "image_digests": sorted(str(d) for d in (image.attrs.get("RepoDigests") or [])),
        }

    def put_file(self, path: str, content: bytes) -> None:
        """Write ``content`` to ``path`` in the container (Docker API archive, any engine)."""
        import io
        import posixpath
        import tarfile

        import docker.errors

        if self.container is None:
            raise BackendError("no container to write into")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(posixpath.basename(path))
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
        try:
            ok = self.container.put_archive(posixpath.dirname(path) or "/", buf.getvalue())
        except docker.errors.APIError as exc:
            raise BackendError(f"cannot write {path} in the container: {exc}") from exc
        if not ok:
            raise BackendError(f"cannot write {path} in the container")

    def path_exists(self, path: str) -> bool:
        """Whether ``path`` exists inside the container."""
        return self.exec(["test", "-e", path]).exit_code == 0


def _pump(
    stream: Iterable[bytes],
    tail: deque[str],
    on_line: Callable[[str], None] | None,
    failure: list[BaseException],
) -> None:
    """Read an exec's output stream into ``tail`` line by line (each passed to ``on_line``);
    an error is kept in ``failure`` (reported after the join)."""
    pending = ""
    try:
        for chunk in stream:
            pending += chunk.decode("utf-8", errors="replace")
            *lines, pending = pending.split("\n")
            for line in lines:
                tail.append(line)
                if on_line:
                    on_line(line)
        if pending:
            tail.append(pending)
    except Exception as exc:  # noqa: BLE001 - reported after the join
        failure.append(exc)
