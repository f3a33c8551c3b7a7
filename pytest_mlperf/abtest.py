"""``--mlperf-ab``: a baseline variant (A) and a candidate variant (B) of the stack, run
alternately on the same machine in one session, judged on the paired ratio.

The syntax is two option sets separated by ``;``, each a comma list of ``key=value``
(an empty set: the session's own options), e.g. ``--mlperf-ab='threads=1;threads=2'``.
The statistics are in :mod:`pytest_mlperf.history.paired`; this module parses the option,
says which side runs when (AB, BA, AB, ...), makes each run's request and turns the runs
into the record's ``ab`` object and the verdict's ``ab`` line. No pytest here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlperf.backends import BUILTIN_BACKENDS
from pytest_mlperf.backends.ab import ab_keys
from pytest_mlperf.backends.base import RunRequest
from pytest_mlperf.backends.variants import BACKEND_KEYS, AbContext
from pytest_mlperf.catalog import Variant
from pytest_mlperf.checks import FAIL, OK, SKIP, Check, Outcome
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.history.paired import INCONCLUSIVE, REGRESSED, judge_ratios, performance_ratio

if TYPE_CHECKING:
    from pytest_mlperf.results.loadgen import ParsedLog

OPTION = "--mlperf-ab"
ROUNDS_OPTION = "--mlperf-ab-rounds"
DEFAULT_ROUNDS = 5
MAX_ROUNDS = 50
#: the LoadGen targets every run after the first is pinned to (the first run's)
TARGET_KEYS = ("expected_qps", "target_qps", "expected_latency_ns")
#: what a Server A/B compares: its p99 at the pinned target (the metric echoes the target)
SERVER_LATENCY_KEY = "result_99.00_percentile_latency_ns"
SIDES = {"A": "baseline", "B": "candidate"}


@dataclass(frozen=True)
class AbVariant:
    """One side: ``A`` (baseline) or ``B`` (candidate) and its option overrides."""

    side: str
    options: Mapping[str, Any]

    @property
    def backend_options(self) -> dict[str, Any]:
        """The overrides that need a backend of their own (``threads``)."""
        return {k: v for k, v in self.options.items() if k in BACKEND_KEYS}

    def describe(self) -> str:
        """``threads=2`` or ``the session's options``."""
        return ",".join(f"{k}={v}" for k, v in self.options.items()) or "the session's options"


@dataclass(frozen=True)
class AbSpec:
    """The two variants and how many rounds (one run of each per round)."""

    baseline: AbVariant
    candidate: AbVariant
    rounds: int = DEFAULT_ROUNDS

    @property
    def order(self) -> list[str]:
        """The sides of the measured runs in order: AB, BA, AB, ... (``ABBAAB...``)."""
        out: list[str] = []
        for i in range(self.rounds):
            out += ["A", "B"] if i % 2 == 0 else ["B", "A"]
        return out

    @property
    def schedule(self) -> list[tuple[str, int]]:
        """Every run as (side, round): first one warm-up run of each side (round 0, not
        judged: a backend's first runs after loading its model are slower, and only the
        first side's is preceded by its calibration), then the rounds."""
        measured = [(side, i // 2 + 1) for i, side in enumerate(self.order)]
        return [("A", 0), ("B", 0), *measured]

    def variant(self, side: str) -> AbVariant:
        """The variant of ``side`` (``A`` or ``B``)."""
        return self.baseline if side == "A" else self.candidate

    def to_dict(self) -> dict[str, Any]:
        """The run setting (results.json ``settings.ab``)."""
        return {
            "baseline": self.baseline.describe(),
            "candidate": self.candidate.describe(),
            "rounds": self.rounds,
        }


def _valid(backend: str) -> tuple[str, ...]:
    """The keys ``backend`` declares (its class's ``ab_keys``, backends/variants.py)."""
    return tuple(key.name for key in ab_keys(backend))


def check_backend(backend: str) -> None:
    """A backend that declares no A/B keys has no A/B variants."""
    if not _valid(backend):
        raise ConfigError(
            f"{OPTION}: the {backend} backend declares no A/B keys; valid backends: "
            f"{', '.join(b for b in BUILTIN_BACKENDS if _valid(b))} (compare two sessions "
            "with --mlperf-baseline or --mlperf-history instead)"
        )


def _side(text: str, side: str, backend: str, variants: Sequence[Variant], cpus: int) -> AbVariant:
    options: dict[str, Any] = {}
    if not text.strip():
        return AbVariant(side, options)
    valid = ", ".join(_valid(backend)) or "none"
    for part in text.split(","):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not key or not value:
            raise ConfigError(
                f"{OPTION}: {part.strip()!r} in the {SIDES[side]} side is not key=value; "
                f"valid keys: {valid}"
            )
        if key not in _valid(backend):
            raise ConfigError(
                f"{OPTION}: unknown key {key!r} in the {SIDES[side]} side; valid keys: {valid}"
            )
        if key in options:
            raise ConfigError(f"{OPTION}: {key!r} given twice in the {SIDES[side]} side")
        declared = next(k for k in ab_keys(backend) if k.name == key)
        try:
            options[key] = declared.parse(value, AbContext(cpus, tuple(variants)))
        except ValueError as exc:
            raise ConfigError(f"{OPTION}: {key}={value!r} in the {SIDES[side]} side{exc}") from None
    return AbVariant(side, options)


def parse_ab(
    value: str | None,
    rounds: str | None,
    backend: str,
    variants: Sequence[Variant],
    cpus: int | None = None,
) -> AbSpec | None:
    """``--mlperf-ab`` and ``--mlperf-ab-rounds``; raises :class:`ConfigError` naming the
    bad value and the valid ones. ``backend``: the resolved backend's name."""
    if value is None:
        if rounds is not None:
            raise ConfigError(f"{ROUNDS_OPTION}={rounds} needs {OPTION}")
        return None
    check_backend(backend)
    halves = value.split(";")
    if len(halves) != 2:
        raise ConfigError(
            f"{OPTION}: {value!r} must be two option sets separated by one ';' "
            f"(baseline;candidate), e.g. 'threads=1;threads=2'; valid keys: "
            f"{', '.join(_valid(backend))}"
        )
    count = DEFAULT_ROUNDS
    if rounds is not None:
        text = rounds.strip()
        count = int(text) if text.isdigit() else 0
        if not 2 <= count <= MAX_ROUNDS:
            raise ConfigError(
                f"{ROUNDS_OPTION}: {rounds!r} is not a whole number of rounds from 2 to "
                f"{MAX_ROUNDS} (e.g. {DEFAULT_ROUNDS})"
            )
    ncpu = cpus or len(os.sched_getaffinity(0))
    return AbSpec(
        _side(halves[0], "A", backend, variants, ncpu),
        _side(halves[1], "B", backend, variants, ncpu),
        count,
    )


def ab_request(
    spec: AbSpec, index: int, request: RunRequest, first_settings: Mapping[str, Any] | None
) -> RunRequest:
    """Run ``index`` of the schedule: its side's directory (``ab-<round>-<side>``,
    ``ab-warmup-<side>``), config_ver, and, after the first run, the first run's LoadGen
    targets (both sides run at the same ones; targets the user pinned win)."""
    side, round_ = spec.schedule[index]
    outdir = request.outdir / f"ab-{round_ or 'warmup'}-{side}"
    outdir.mkdir(parents=True, exist_ok=True)
    overrides = dict(request.overrides)
    if first_settings is not None:
        for key in TARGET_KEYS:
            value = first_settings.get(key)
            if isinstance(value, (int, float)) and key not in overrides:
                overrides[key] = float(value)
    config_ver = spec.variant(side).options.get("config_ver", request.config_ver)
    return replace(request, outdir=outdir, overrides=overrides, config_ver=config_ver, ab_side=side)


@dataclass(frozen=True)
class AbRun:
    """One LoadGen run of an A/B item, as the record keeps it."""

    side: str
    log_dir: Path
    value: float | None
    validity: str | None
    metric_value: float | None


def compared_value(
    scenario: str, metric_value: float | None, loadgen: Mapping[str, Any]
) -> float | None:
    """What a run contributes: the scenario metric; Server, its p99 at the pinned target."""
    if scenario == "Server":
        value = loadgen.get(SERVER_LATENCY_KEY)
        return float(value) if isinstance(value, (int, float)) else None
    return metric_value


def ab_record_of_runs(
    spec: AbSpec,
    scenario: str,
    runs: Sequence[tuple[Path, ParsedLog]],
    tolerance_pct: float,
) -> dict[str, Any]:
    """:func:`ab_record` of the measured runs (log dir and parsed logs, in ``spec.order``;
    the warm-ups left out): what each contributes, the metric named by the first."""
    ab_runs = [
        AbRun(
            side,
            log_dir,
            compared_value(scenario, parsed.metric_value, parsed.loadgen),
            parsed.result_validity,
            parsed.metric_value,
        )
        for (log_dir, parsed), side in zip(runs, spec.order, strict=True)
    ]
    first = runs[0][1]
    return ab_record(spec, scenario, (first.metric_name, first.unit), ab_runs, tolerance_pct)


def ab_record(
    spec: AbSpec,
    scenario: str,
    metric: tuple[str | None, str | None],
    runs: Sequence[AbRun],
    tolerance_pct: float,
) -> dict[str, Any]:
    """The record's ``ab`` object: both sides' runs, each round's ratio, the interval and
    the status (``passed``, ``regressed``, ``inconclusive``) with its reason."""
    name, unit = metric
    if scenario == "Server":
        name, unit = f"{SERVER_LATENCY_KEY} at the pinned target_qps", "ns"
    higher = unit == "samples/s"
    sides: dict[str, list[AbRun]] = {"A": [], "B": []}
    for run in runs:
        sides[run.side].append(run)
    missing = [
        f"round {i + 1} ({SIDES[run.side]})"
        for side_runs in sides.values()
        for i, run in enumerate(side_runs)
        if run.value is None or run.value <= 0
    ]
    out: dict[str, Any] = {
        "order": "".join(spec.order),
        "warmup_runs": 2,
        "rounds": spec.rounds,
        "compared": name,
        "unit": unit,
        "higher_is_better": higher,
        "baseline": _side_record(spec, "A", sides["A"]),
        "candidate": _side_record(spec, "B", sides["B"]),
    }
    if missing or len(sides["A"]) != len(sides["B"]):
        out.update(
            status=INCONCLUSIVE,
            reason=f"inconclusive: no {name} in {', '.join(missing) or 'every round'}",
            ratios=[],
            ratio=None,
            ci_low=None,
            ci_high=None,
            confidence=None,
            tolerance_pct=tolerance_pct,
            change_pct=None,
        )
        return out
    ratios = [
        performance_ratio(float(a.value or 0), float(b.value or 0), higher)
        for a, b in zip(sides["A"], sides["B"], strict=True)
    ]
    out.update(judge_ratios(ratios, tolerance_pct).to_dict())
    return out


def _side_record(spec: AbSpec, side: str, runs: Sequence[AbRun]) -> dict[str, Any]:
    """One side in the record's ``ab``: its options and its runs, by round."""
    return {
        "options": {  # a checkout's path as text
            k: str(v) if isinstance(v, Path) else v for k, v in spec.variant(side).options.items()
        },
        "describe": spec.variant(side).describe(),
        "runs": [
            {
                "round": i + 1,
                "log_dir": str(r.log_dir),
                "value": r.value,
                "validity": r.validity,
                "metric_value": r.metric_value,
            }
            for i, r in enumerate(runs)
        ],
    }


def ab_check(ab: Mapping[str, Any]) -> Check:
    """The verdict's ``ab`` line: ok, FAIL (regressed) or skip (inconclusive: the item is
    skipped with the figures)."""
    ratio = ab.get("ratio")
    shown = "-" if ratio is None else f"{ratio:.3f} (CI {ab['ci_low']:.3f}-{ab['ci_high']:.3f})"
    floor = 1 - float(ab["tolerance_pct"]) / 100
    expected = f"CI above {floor:.3f} (tolerance {ab['tolerance_pct']:g} %)"
    reason = f"A/B {ab['reason']}"
    if ab["status"] == REGRESSED:
        return Check("ab", shown, expected, FAIL, ab["reason"], reason=reason)
    if ab["status"] == INCONCLUSIVE:
        return Check(
            "ab", shown, expected, SKIP, ab["reason"], gives=Outcome.SKIPPED, reason=reason
        )
    return Check("ab", shown, expected, OK, ab["reason"])
