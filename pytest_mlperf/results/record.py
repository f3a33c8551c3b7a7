"""The result record of one item (``result.json``) and a typed view of it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_mlperf.checks import Outcome, Verdict
from pytest_mlperf.redact import redact_obj
from pytest_mlperf.results.loadgen import ACCURACY, DETAIL, SUMMARY, ParsedLog

SCHEMA_VERSION = 1
_LOG_FILES = (SUMMARY, DETAIL, ACCURACY)


def build_record(
    *,
    nodeid: str,
    benchmark: str,
    scenario: str,
    mode: str,
    config_ver: str,
    backend: str,
    system: str,
    fast: bool,
    parsed: ParsedLog | None,
    verdict: Verdict,
    log_dir: Path,
    settings: Mapping[str, Any],
    calibration: Mapping[str, Any] | None,
    timing: Mapping[str, float],
    threshold: str | None,
    error: str | None = None,
    item_dir: Path | None = None,
    details: Mapping[str, Any] | None = None,
    accuracy: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the record, secrets masked once it is complete (``extra``: the fields a
    caller adds, e.g. provenance); ``parsed`` is None when the run produced no readable logs."""
    fields = (parsed or ParsedLog(source="")).record_fields()
    if error:
        fields["errors"].append(error)
    record: dict[str, Any] = redact_obj(
        {
            "schema_version": SCHEMA_VERSION,
            "nodeid": nodeid,
            "benchmark": benchmark,
            "scenario": scenario,
            "mode": mode,
            "config_ver": config_ver,
            "backend": backend,
            "system": system,
            "fast": fast,
            **fields,
            "threshold": threshold,
            "verdict": verdict.to_dict(),
            "accuracy": dict(accuracy) if accuracy is not None else None,
            "settings": dict(settings),
            "calibration": dict(calibration) if calibration else None,
            "timing": dict(timing),
            "log_dir": str(log_dir),
            "item_dir": str(item_dir or log_dir),
            "backend_details": dict(details) if details else None,
            "files": sorted(name for name in _LOG_FILES if (log_dir / name).is_file()),
            **(extra or {}),
        }
    )
    return record


class MlperfResult:
    """A typed, read-only view of a result record, for reports and hand-written tests."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record

    @property
    def benchmark(self) -> str:
        """Full benchmark name, e.g. ``bert-99``."""
        return str(self.record["benchmark"])

    @property
    def scenario(self) -> str:
        """Offline, Server, SingleStream or MultiStream."""
        return str(self.record["scenario"])

    @property
    def mode(self) -> str:
        """performance or accuracy."""
        return str(self.record["mode"])

    @property
    def validity(self) -> str | None:
        """VALID, INVALID, or None when nothing was logged."""
        value = self.record["result_validity"]
        return None if value is None else str(value)

    @property
    def invalid_reasons(self) -> list[str]:
        """The codes of the reasons the run is INVALID."""
        return [str(r["code"]) for r in self.record["invalid_reasons"]]

    @property
    def fast_mode_only_reasons(self) -> bool:
        """True when every INVALID reason is one a shortened run explains."""
        from pytest_mlperf.results.loadgen import SHORTENED_RUN_REASONS

        codes = self.invalid_reasons
        return bool(codes) and all(code in SHORTENED_RUN_REASONS for code in codes)

    @property
    def metric_value(self) -> float | None:
        """The scenario's MLPerf metric value, as logged."""
        value = self.record["metric"]["value"]
        return None if value is None else float(value)

    @property
    def samples_per_second(self) -> float | None:
        """Throughput: the Offline/Server metric, or LoadGen's QPS for the stream scenarios."""
        if self.scenario in ("Offline", "Server"):
            return self.metric_value
        value = self.loadgen.get("result_qps_with_loadgen_overhead")
        return None if value is None else float(value)

    def latency_ns(self, percentile: float = 90.0) -> float | None:
        """A latency percentile LoadGen logged (50, 90, 95, 97, 99, 99.9)."""
        value = self.loadgen.get(f"result_{percentile:.2f}_percentile_latency_ns")
        return None if value is None else float(value)

    @property
    def passed(self) -> bool:
        """The verdict of pytest-mlperf's checks."""
        return bool(self.record["verdict"]["outcome"] == Outcome.PASSED)

    @property
    def accuracy(self) -> Any:
        """Accuracy figures, or None in performance mode / when not evaluated."""
        return self.record["accuracy"]

    @property
    def accuracy_pass(self) -> bool | None:
        """Whether every accuracy metric with a threshold met it; None when not evaluated."""
        accuracy = self.record.get("accuracy")
        if not accuracy or accuracy.get("accuracy_pass") is None:
            return None
        return bool(accuracy["accuracy_pass"])

    def accuracy_metric(self, name: str | None = None) -> float | None:
        """An accuracy metric's value (default: the primary one, F1 or DICE)."""
        accuracy = self.record.get("accuracy")
        if not accuracy:
            return None
        wanted = name or accuracy["metric"]
        for metric in accuracy["metrics"]:
            if metric["name"] == wanted:
                return float(metric["value"])
        return None

    @property
    def loadgen(self) -> Mapping[str, Any]:
        """Every ``result_*`` / ``effective_*`` key LoadGen logged."""
        value: Mapping[str, Any] = self.record["loadgen"]
        return value

    @property
    def log_dir(self) -> Path:
        """Where the LoadGen logs of this run are."""
        return Path(self.record["log_dir"])

    def __repr__(self) -> str:
        return (
            f"MlperfResult({self.benchmark} {self.scenario} {self.mode}: {self.validity}, "
            f"{self.record['metric']['name']}={self.metric_value})"
        )
