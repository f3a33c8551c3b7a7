"""Slurm: expand a node list and build one pytest-xdist ``--tx`` spec per node (pytest-free).

Each worker is a Slurm job step: execnet's popen gateway with ``srun -N1 -n1 -w NODE
--unbuffered PYTHON`` as the interpreter (without ``--unbuffered`` srun buffers the gateway's
stdout and the xdist handshake hangs).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_mlperf.errors import ConfigError

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def expand_nodelist(text: str, option: str = "--mlperf-slurm-nodes") -> list[str]:
    """``n[1-3],gpu[01-02],login`` → ``n1 n2 n3 gpu01 gpu02 login`` (Slurm's hostlist form).

    Zero padding is kept (``[01-10]``); duplicates are dropped, order is kept. Raises
    :class:`ConfigError` naming the bad part.
    """
    names: list[str] = []
    for part in _split_top(text, option):
        match = re.fullmatch(r"([^\[\]]*)\[([^\[\]]+)\]([^\[\]]*)", part)
        if match is None:
            if not _NAME.match(part):
                raise _bad(option, text, part)
            names.append(part)
            continue
        prefix, body, suffix = match.groups()
        if (prefix and not _NAME.match(prefix)) or (suffix and not _NAME.match(suffix)):
            raise _bad(option, text, part)
        for piece in body.split(","):
            rng = _RANGE.match(piece.strip())
            if rng is None:
                raise _bad(option, text, part)
            lo, hi = rng.group(1), rng.group(2) or rng.group(1)
            if int(hi) < int(lo):
                raise _bad(option, text, part)
            width = len(lo) if lo.startswith("0") else 0
            if int(hi) - int(lo) > 100_000:
                raise _bad(option, text, part)
            names.extend(f"{prefix}{i:0{width}d}{suffix}" for i in range(int(lo), int(hi) + 1))
    if not names:
        raise ConfigError(f"{option}: {text!r} names no nodes; e.g. n[1-3] or gpu01,gpu02")
    return list(dict.fromkeys(names))


def _split_top(text: str, option: str) -> list[str]:
    """Split on commas outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text.strip():
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise _bad(option, text, text)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if depth != 0:
        raise _bad(option, text, text)
    parts.append(current.strip())
    return [p for p in parts if p]


def _bad(option: str, text: str, part: str) -> ConfigError:
    return ConfigError(
        f"{option}: cannot read the node list {text!r} at {part!r}; valid: names and "
        "Slurm ranges such as n[1-3],gpu[01-02],login (or auto: $SLURM_JOB_NODELIST)"
    )


def resolve_nodes(
    value: str, env: Mapping[str, str], option: str = "--mlperf-slurm-nodes"
) -> list[str]:
    """The node names ``value`` means: ``auto`` is the allocation's ``SLURM_JOB_NODELIST``."""
    if value.strip() == "auto":
        nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
        if not nodelist:
            raise ConfigError(
                f"{option}=auto: SLURM_JOB_NODELIST is not set (not inside an allocation); "
                "run under salloc/sbatch or name the nodes, e.g. n[1-3]"
            )
        return expand_nodelist(nodelist, f"{option}=auto (SLURM_JOB_NODELIST)")
    return expand_nodelist(value, option)


def default_srun_args(backend: str, env: Mapping[str, str]) -> list[str]:
    """srun arguments a GPU backend gets unless ``--mlperf-slurm-args`` says otherwise.

    nvidia: the step holds its node exclusively and, inside an allocation that has GPUs,
    all of them (``--gres=gpu:N`` from ``SLURM_GPUS_ON_NODE``). The CPU reference backend
    gets none.
    """
    if backend != "nvidia":
        return []
    args = ["--exclusive"]
    gpus = env.get("SLURM_GPUS_ON_NODE", "")
    if gpus.isdigit() and int(gpus) > 0:
        args.append(f"--gres=gpu:{gpus}")
    return args


def parse_srun_args(text: str, option: str = "--mlperf-slurm-args") -> list[str]:
    """Extra srun arguments, split like a shell would (never run through one)."""
    try:
        args = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: cannot split {text!r}: {exc}") from exc
    for arg in args:
        if "//" in arg:
            raise ConfigError(f"{option}: {arg!r} contains '//', which ends an xdist --tx spec")
        if not arg.startswith("-"):
            raise ConfigError(
                f"{option}: {arg!r} is not an srun option; valid: options such as "
                "--gres=gpu:8 --exclusive --cpus-per-task=16, values joined with '=' (srun "
                "would run a bare word as the command; the node comes from --mlperf-slurm-nodes)"
            )
        if arg in ("-w", "-N", "-n") or arg.startswith(("--nodelist", "-w", "--nodes")):
            raise ConfigError(
                f"{option}: {arg!r} is set per worker by pytest-mlperf (-N1 -n1 -w NODE); "
                "name the nodes with --mlperf-slurm-nodes"
            )
    return args


def tx_specs(
    nodes: Sequence[str], python: str, extra: Sequence[str] = (), srun: str = "srun"
) -> list[str]:
    """One execnet ``popen//python=...`` spec per node.

    execnet splits the ``python=`` value with ``shlex``, so every part is quoted here.
    """
    specs = []
    for node in nodes:
        argv = [srun, "-N1", "-n1", "-w", node, *extra, "--unbuffered", python]
        specs.append("popen//python=" + shlex.join(argv))
    return specs


def node_tags(env: Mapping[str, str] | None = None, worker: str | None = None) -> dict[str, Any]:
    """Which node this process runs on: its name (``MLPERF_NODE_NAME``, ``SLURMD_NODENAME``
    or the host name), the host name and the Slurm job and step ids."""
    env = os.environ if env is None else env
    hostname = socket.gethostname()
    return {
        "name": env.get("MLPERF_NODE_NAME") or env.get("SLURMD_NODENAME") or hostname,
        "hostname": hostname,
        "slurm_node": env.get("SLURMD_NODENAME"),
        "slurm_job_id": env.get("SLURM_JOB_ID"),
        "slurm_step_id": env.get("SLURM_STEP_ID"),
        "worker": worker,
    }


@dataclass(frozen=True)
class FleetSettings:
    """The fleet options, parsed: where the workers run and how outliers are judged."""

    enabled: bool = False
    nodes: tuple[str, ...] = ()
    srun_args: tuple[str, ...] = ()
    gate: bool = False
    mad_k: float = 3.0

    def tx(self, python: str) -> list[str]:
        """The ``--tx`` specs for ``--mlperf-slurm-nodes`` (empty without it)."""
        return tx_specs(self.nodes, python, self.srun_args)


def parse_fleet_settings(
    get: Callable[[str], str | bool | None], backend: str, env: Mapping[str, str]
) -> FleetSettings:
    """From the raw option values (``get(name)``); raises ConfigError naming the bad one."""
    nodes_value = get("slurm_nodes")
    nodes: list[str] = []
    if isinstance(nodes_value, str) and nodes_value.strip():
        nodes = resolve_nodes(nodes_value, env)
    args_value = get("slurm_args")
    if isinstance(args_value, str):
        srun_args = parse_srun_args(args_value)
        if not nodes:
            raise ConfigError(
                f"--mlperf-slurm-args={args_value!r} needs --mlperf-slurm-nodes (the nodes "
                "whose srun steps get these arguments)"
            )
    else:
        srun_args = default_srun_args(backend, env)
    k_value = get("fleet_mad_k")
    k = 3.0
    if isinstance(k_value, str):
        try:
            k = float(k_value)
        except ValueError:
            k = -1.0
        if not k > 0 or k != k or k == float("inf"):
            raise ConfigError(
                f"--mlperf-fleet-mad-k: {k_value!r} is not a number > 0; valid: e.g. 3 or 2.5"
            )
    gate = bool(get("fleet_gate"))
    enabled = bool(nodes) or bool(get("fleet")) or gate
    return FleetSettings(enabled, tuple(nodes), tuple(srun_args), gate, k)
