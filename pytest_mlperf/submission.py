"""Submission readiness: the MLCommons submission checker's per-result rules on one item.

The rules' figures are data, ``benchmarks/submission/<round>.json`` (schema
``schemas/submission.schema.json``), taken from the round's submission checker. Each rule
reads what LoadGen logged (``effective_*``/``result_*`` keys and error records of
``mlperf_log_detail.txt``) and says the figure, the bound and, where a run was INVALID
because of its targets, the value to set next in ``user.conf``.

Rules covered (as ``check_performance_dir`` of the v4.1 checker): ``validity``
(``result_validity`` VALID), ``loadgen_errors``, ``seeds``, ``min_duration``, ``min_queries``
(Offline only: samples per query; the scenarios with early stopping are judged by it and
equal-issue models are exempt), ``equal_issue`` (closed 3d-unet: the log or the measurement
directory's mlperf.conf/user.conf; unknown without either), ``early_stopping`` (Server and
the stream scenarios), ``latency_bound`` (Server: ``effective_target_latency_ns``),
``performance_sample_count``; for
accuracy items, on the accuracy directory :func:`stage_accuracy` writes as a submission holds
it: ``accuracy_target`` (the figure ``accuracy.txt`` states), ``accuracy_hash`` (a ``hash=``
line is present, as the checker requires; a mismatch with the full log is reported, as
the checker does not compare) and ``accuracy_log_truncated``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from pytest_mlperf._paths import data_dir
from pytest_mlperf.checks import (
    FAIL,
    OK,
    SKIP,
    WARN,
    Check,
    Verdict,
    decide,
    ok_if,
    reason_line,
)
from pytest_mlperf.display import latency_text
from pytest_mlperf.measurement_conf import conf_model, equal_issue_conf, has_conf
from pytest_mlperf.results.loadgen import ParsedLog
from pytest_mlperf.schemas import load_data_file

ROUND = "v4.1"


@cache
def load_rules(round_: str = ROUND) -> dict[str, Any]:
    """``benchmarks/submission/<round>.json``, validated."""
    path = data_dir("benchmarks") / "submission" / f"{round_}.json"
    return load_rules_file(path)


def load_rules_file(path: Path) -> dict[str, Any]:
    """A submission rules file, validated (raises DataError naming the file and field)."""
    raw: dict[str, Any] = load_data_file(path, "submission", "submission rules")
    return raw


def _num(loadgen: Mapping[str, Any], key: str) -> float | None:
    value = loadgen.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def check_item(
    rules: Mapping[str, Any],
    benchmark: str,
    scenario: str,
    mode: str,
    loadgen: Mapping[str, Any],
    errors: list[str],
    validity: str | None = None,
    *,
    division: str = "closed",
    measurement_dir: Path | None = None,
) -> list[Check]:
    """Apply every rule that concerns this item (accuracy items: LoadGen errors only).

    ``validity``: the parsed ``result_validity`` (default: the ``loadgen`` object's);
    ``division``: ``closed``, ``network`` or ``open`` (equal-issue mode is a closed and
    network rule); ``measurement_dir``: the result's ``measurements/<system>/<model>/<scenario>``
    directory, whose ``mlperf.conf``/``user.conf`` the equal-issue rule reads.
    """
    out = [
        Check(
            "loadgen_errors",
            f"{len(errors)} error(s)" + (f": {errors[0]}" if errors else ""),
            "no LoadGen error in mlperf_log_detail.txt",
            ok_if(not errors),
        )
    ]
    if mode != "performance":
        return out
    bench = rules["benchmarks"].get(benchmark)
    out.append(_validity(scenario, loadgen, validity, bench))
    out.append(_seeds(rules, loadgen))
    out.append(_min_duration(rules, scenario, loadgen))
    if bench is not None:
        # the checker's minimum-query rule: only where neither early stopping (every
        # scenario but Offline) nor equal-issue mode judges the run; Offline's minimum
        # samples per query applies to every model
        if scenario == "Offline":
            out.append(_min_queries(bench, scenario, loadgen))
        if bench.get("equal_issue") and division in EQUAL_ISSUE_DIVISIONS:
            out.append(_equal_issue(loadgen, benchmark, scenario, measurement_dir))
        out.append(_performance_sample_count(bench, loadgen))
    if scenario in EARLY_STOPPING_SCENARIOS:
        met = loadgen.get("early_stopping_met")
        out.append(
            Check(
                "early_stopping",
                "met" if met is True else "not met" if met is False else "not logged",
                "early_stopping_met = true",
                ok_if(met is True),
                fix=""
                if met is True
                else "run more queries: raise min_query_count, or lower the target so "
                "the tail latency estimate stays within bounds",
            )
        )
    bound = (bench or {}).get("latency_constraint_ns", {}).get(scenario)
    if bound is not None and scenario in EARLY_STOPPING_SCENARIOS:
        out.append(_latency(scenario, int(bound), loadgen))
    return out


#: the checker's ``uses_early_stopping`` (v4.1)
EARLY_STOPPING_SCENARIOS = ("Server", "SingleStream", "MultiStream")


def _validity(
    scenario: str,
    loadgen: Mapping[str, Any],
    validity: str | None,
    bench: Mapping[str, Any] | None,
) -> Check:
    """The checker starts from ``result_validity == VALID``: nothing INVALID is ready."""
    value = validity if validity is not None else loadgen.get("result_validity")
    ok = value == "VALID"
    suggestion = ""
    bound = (bench or {}).get("latency_constraint_ns", {}).get(scenario)
    p99 = _num(loadgen, "result_99.00_percentile_latency_ns")
    if not ok and scenario == "Server" and bound and p99 and p99 > bound:
        base = _num(loadgen, "effective_target_qps") or _num(
            loadgen, "result_completed_samples_per_sec"
        )
        if base:
            suggestion = (
                f"server_target_qps = {base * bound / p99 * 0.95:.1f} "
                f"({base:.1f} × bound/p99 × 0.95; p99 {latency_text(p99)})"
            )
    return Check(
        "validity", str(value or "not logged"), "result_validity = VALID", ok_if(ok), fix=suggestion
    )


#: the checker's ``requires_equal_issue``: closed and network divisions only
EQUAL_ISSUE_DIVISIONS = ("closed", "network")


def _equal_issue(
    loadgen: Mapping[str, Any], model: str, scenario: str, measurement_dir: Path | None
) -> Check:
    """v4.1 closed 3d-unet: equal-issue mode (``sample_concatenate_permutation``).

    As the checker (c7db1c3f) decides it: met when the measurement directory's
    ``mlperf.conf``/``user.conf`` sets it to 1 for the model and scenario
    (``check_measurement_dir``, ~2480) or the log's value is the string ``true``
    (``check_performance_dir``, ~1126). A LoadGen JSON log holds a boolean, never that
    string, so with the measurement files at hand only they decide. Without them a run
    that logged ``true`` is met and anything else is unknown (skipped), not failed: the
    round's mlperf.conf, which a submission carries, sets it for 3d-unet.
    """
    value = loadgen.get("effective_sample_concatenate_permutation")
    logged = "not logged" if value is None else f"logged {str(value).lower()}"
    bound = "sample_concatenate_permutation = 1 (equal-issue mode)"
    fix = f"{conf_model(model)}.{scenario}.sample_concatenate_permutation = 1 in user.conf"
    if measurement_dir is not None and has_conf(measurement_dir):
        ok = equal_issue_conf(measurement_dir, model, scenario) or value == "true"
        said = "set" if ok else "not set"
        return Check(
            "equal_issue",
            f"sample_concatenate_permutation {said} in mlperf.conf/user.conf ({logged})",
            bound,
            ok_if(ok),
            fix="" if ok else fix,
        )
    if value is True or str(value).lower() == "true":
        return Check("equal_issue", f"sample_concatenate_permutation {logged}", bound, OK)
    return Check(
        "equal_issue",
        f"unknown: sample_concatenate_permutation {logged} and no mlperf.conf/user.conf",
        bound,
        SKIP,
        fix=fix,
    )


def _seeds(rules: Mapping[str, Any], loadgen: Mapping[str, Any]) -> Check:
    wrong = [
        f"{key.removeprefix('effective_')}={loadgen.get(key)}"
        for key, want in rules["seeds"].items()
        if loadgen.get(key) != want
    ]
    return Check(
        "seeds",
        ", ".join(wrong) or "official",
        f"the {rules['round']} seeds: "
        + ", ".join(f"{k.removeprefix('effective_')}={v}" for k, v in rules["seeds"].items()),
        ok_if(not wrong),
        fix=""
        if not wrong
        else f"run with LoadGen {rules['round'].lstrip('v')} (its built-in mlperf.conf sets "
        "these seeds) and do not set seeds in user.conf",
    )


def _min_duration(rules: Mapping[str, Any], scenario: str, loadgen: Mapping[str, Any]) -> Check:
    want = int(rules["min_duration_ms"])
    effective = _num(loadgen, "effective_min_duration_ms")
    met = loadgen.get("result_min_duration_met")
    ok = effective is not None and effective >= want and met is not False
    value = f"min_duration {effective:.0f} ms" if effective is not None else "not logged"
    if met is False:
        value += ", run shorter than that"
    suggestion = ""
    if not ok:
        suggestion = "min_duration = 600000 (mlperf.conf's); remove any lower value from user.conf"
        qps = _num(loadgen, "result_samples_per_second")
        if scenario == "Offline" and met is False and qps:
            suggestion = (
                f"offline_expected_qps = {qps * 1.1:.1f} (measured {qps:.1f} samples/s + 10 %)"
            )
    return Check("min_duration", value, f">= {want} ms (and met)", ok_if(ok), fix=suggestion)


def _min_queries(bench: Mapping[str, Any], scenario: str, loadgen: Mapping[str, Any]) -> Check:
    if scenario == "Offline":
        want = int(bench["offline_min_samples_per_query"])
        spq = _num(loadgen, "effective_samples_per_query")
        ok = spq is not None and spq >= want
        qps = _num(loadgen, "result_samples_per_second")
        suggestion = ""
        if not ok and qps:
            suggestion = f"offline_expected_qps = {max(qps, want / 600.0) * 1.1:.1f}"
        return Check(
            "min_queries",
            f"{spq:.0f} samples per query" if spq is not None else "not logged",
            f">= {want} samples per query",
            ok_if(ok),
            fix=suggestion,
        )
    want = int(bench["min_queries"].get(scenario, 1))
    count = _num(loadgen, "result_query_count")
    if count is None:
        count = _num(loadgen, "effective_min_query_count")
    ok = count is not None and count >= want
    suggestion = ""
    if not ok:
        if scenario == "SingleStream":
            p90 = _num(loadgen, "result_90.00_percentile_latency_ns")
            if p90:
                suggestion = f"single_stream_expected_latency_ns = {p90:.0f} (measured p90)"
        elif scenario == "Server":
            qps = _num(loadgen, "result_completed_samples_per_sec")
            suggestion = f"min_query_count = {want}" + (
                f"; at the measured {qps:.1f} samples/s that takes {want / qps:.0f} s"
                if qps
                else ""
            )
    return Check(
        "min_queries",
        f"{count:.0f} queries" if count is not None else "not logged",
        f">= {want} queries",
        ok_if(ok),
        fix=suggestion,
    )


def _performance_sample_count(bench: Mapping[str, Any], loadgen: Mapping[str, Any]) -> Check:
    want = int(bench["performance_sample_count"])
    count = _num(loadgen, "effective_performance_sample_count")
    ok = count is not None and count >= want
    return Check(
        "performance_sample_count",
        f"{count:.0f}" if count is not None else "not logged",
        f">= {want}",
        ok_if(ok),
        fix="" if ok else f"performance_sample_count_override = {want} (or remove the override)",
    )


def _latency(scenario: str, bound_ns: int, loadgen: Mapping[str, Any]) -> Check:
    """What the checker reads: the target latency the run was judged by (early stopping
    included), ``effective_target_latency_ns``, within the round's constraint. The p99 a run
    measured is LoadGen's own VALID/INVALID (the ``validity`` rule)."""
    effective = _num(loadgen, "effective_target_latency_ns")
    p99 = _num(loadgen, "result_99.00_percentile_latency_ns")
    ok = effective is not None and effective <= bound_ns
    value = f"target latency {latency_text(effective)}" if effective is not None else "not logged"
    if p99 is not None:
        value += f" (measured p99 {latency_text(p99)})"
    return Check(
        "latency_bound",
        value,
        f"<= {latency_text(bound_ns)} ({scenario})",
        ok_if(ok),
        fix="" if ok else f"server_target_latency_ns = {bound_ns} (remove it from user.conf)",
    )


ACCURACY_LOG = "mlperf_log_accuracy.json"
ACCURACY_TXT = "accuracy.txt"
_HASH_LINE = re.compile(r"^hash=(\w+)$")


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (accuracy logs reach hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def accuracy_lines(metrics: Mapping[str, float]) -> list[str]:
    """The lines the round's accuracy script prints, which the checker's patterns read.

    SQuAD (``F1``): ``{"exact_match": 80.1, "f1": 87.9}``; KiTS19 (``DICE``):
    ``Accuracy: mean = 0.86170, kidney = 0.9347, tumor = 0.7887``.
    """
    if "F1" in metrics:
        em = metrics.get("exact_match", 0.0)
        return [f'{{"exact_match": {em:.4f}, "f1": {metrics["F1"]:.4f}}}']
    if "DICE" in metrics:
        return [
            f"Accuracy: mean = {metrics['DICE']:.5f}, "
            f"kidney = {metrics.get('kidney_DICE', 0.0):.4f}, "
            f"tumor = {metrics.get('tumor_DICE', 0.0):.4f}"
        ]
    return [f"{name} = {value}" for name, value in metrics.items()]


def stage_accuracy(
    rules: Mapping[str, Any],
    log_dir: Path,
    dest: Path,
    metrics: Mapping[str, float],
    log_sha256: str | None = None,
) -> Path:
    """Write the accuracy directory as a submission holds it; returns ``dest``.

    ``accuracy.txt``: the harness's own (when ``log_dir`` has one) or the accuracy script's
    lines for ``metrics``, then ``hash=<SHA-256 of the full log>``; the log itself cut to
    its first and last ``viewable_bytes`` when above ``max_log_bytes`` (as MLCommons'
    truncate_accuracy_log.py does); the detail and summary logs copied.
    """
    acc = rules["accuracy"]
    log = log_dir / ACCURACY_LOG
    dest.mkdir(parents=True, exist_ok=True)
    own = log_dir / ACCURACY_TXT
    if own.is_file():
        lines = [
            line
            for line in own.read_text(encoding="utf-8", errors="replace").splitlines()
            if not _HASH_LINE.match(line)
        ]
    else:
        lines = accuracy_lines(metrics)
    lines.append(f"hash={log_sha256 or sha256_file(log)}")
    (dest / ACCURACY_TXT).write_text("\n".join(lines) + "\n", encoding="utf-8")
    size, view = log.stat().st_size, int(acc["viewable_bytes"])
    if size > int(acc["max_log_bytes"]):
        with log.open("rb") as src, (dest / ACCURACY_LOG).open("wb") as out:
            out.write(src.read(view))
            out.write(b"\n\n...\n\n")
            src.seek(size - view)
            out.write(src.read(view))
    else:
        shutil.copyfile(log, dest / ACCURACY_LOG)
    for name in ("mlperf_log_detail.txt", "mlperf_log_summary.txt"):
        if (log_dir / name).is_file():
            shutil.copyfile(log_dir / name, dest / name)
    return dest


def check_accuracy_dir(
    rules: Mapping[str, Any],
    staged: Path,
    full_log: Path,
    metric: str,
    threshold: float | None,
    log_sha256: str | None = None,
) -> list[Check]:
    """The checker's accuracy-directory rules on ``staged``, against the untruncated log
    (``log_sha256``: its hash when already known)."""
    acc = rules["accuracy"]
    text = staged / ACCURACY_TXT
    lines: Sequence[str] = (
        text.read_text(encoding="utf-8", errors="replace").splitlines() if text.is_file() else []
    )
    want = log_sha256 or (sha256_file(full_log) if full_log.is_file() else None)
    return [
        _target_rule(lines, acc["patterns"].get(metric), text.is_file(), metric, threshold),
        _hash_rule(lines, want),
        _truncated_rule(staged / ACCURACY_LOG, int(acc["max_log_bytes"])),
    ]


def _target_rule(
    lines: Sequence[str], pattern: str | None, has_text: bool, metric: str, threshold: float | None
) -> Check:
    """accuracy.txt's last ``metric`` figure (``pattern``'s group 1) against the target."""
    figure = None
    if pattern:
        for line in lines:
            m = re.match(pattern, line)
            if m:
                figure = float(m.group(1))
    if figure is None:
        return Check(
            "accuracy_target",
            f"no {metric} line in {ACCURACY_TXT}" if has_text else f"no {ACCURACY_TXT}",
            f"{metric} >= {threshold}" if threshold is not None else f"a {metric} line",
            FAIL,
            fix="write the accuracy script's output to accuracy.txt",
        )
    return Check(
        "accuracy_target",
        f"{metric} {figure:g}",
        f">= {threshold:g}" if threshold is not None else "no target",
        ok_if(threshold is None or figure >= threshold),
    )


def _hash_rule(lines: Sequence[str], want: str | None) -> Check:
    """accuracy.txt's hash= line; compared with the full log's hash (``want``) for the value."""
    hashes = [m.group(1) for line in lines if (m := _HASH_LINE.match(line))]
    if not hashes:
        return Check(
            "accuracy_hash",
            f"no hash= line in {ACCURACY_TXT}",
            "hash=<SHA-256 of the full mlperf_log_accuracy.json>",
            FAIL,
            fix="append hash=<sha256sum of the untruncated log> to accuracy.txt before truncating",
        )
    # the checker requires a hash= line and does not recompute it; a mismatch with the
    # full log is said in the value, not failed
    same = hashes[-1] == want
    return Check(
        "accuracy_hash",
        f"hash={hashes[-1][:16]}…"
        + ("" if same else " (does NOT match the full log; the checker does not compare)"),
        "a hash= line in accuracy.txt",
        OK,
        fix="" if same else "recompute the hash from the log this run wrote",
    )


def _truncated_rule(staged_log: Path, limit: int) -> Check:
    """The staged mlperf_log_accuracy.json within the checker's size limit."""
    size = staged_log.stat().st_size if staged_log.is_file() else None
    return Check(
        "accuracy_log_truncated",
        f"{size} bytes" if size is not None else f"no {ACCURACY_LOG}",
        f"<= {limit} bytes",
        ok_if(size is not None and size <= limit),
        fix=""
        if size is not None and size <= limit
        else "truncate it (first and last 4 KiB) after writing the hash, as "
        "truncate_accuracy_log.py does",
    )


def stage_and_check_accuracy(
    rules: Mapping[str, Any], log_dir: Path, dest: Path, accuracy: Mapping[str, Any]
) -> tuple[Path, list[Check]]:
    """Stage an accuracy item's directory (see :func:`stage_accuracy`) and check it."""
    metrics = {str(m["name"]): float(m["value"]) for m in accuracy.get("metrics") or []}
    # hashed once for both: accuracy logs reach hundreds of MB
    digest = sha256_file(log_dir / ACCURACY_LOG)
    staged = stage_accuracy(rules, log_dir, dest, metrics, digest)
    threshold = accuracy.get("threshold")
    return staged, check_accuracy_dir(
        rules,
        staged,
        log_dir / ACCURACY_LOG,
        str(accuracy.get("metric")),
        float(threshold) if threshold is not None else None,
        digest,
    )


def apply_to_verdict(verdict: Verdict, results: list[Check], mode: str) -> Verdict:
    """Add one check per failed rule; ``fail`` fails the item, ``warn`` only reports them."""
    failed = [r for r in results if not r.passed]
    if not failed:
        unknown = [r.name for r in results if r.skipped]
        said = "all met" + (f" but {', '.join(unknown)} unknown" if unknown else "")
        return decide([Check("submission", f"{len(results)} rules", said)], prior=verdict)
    checks = []
    for r in failed:
        detail = f"{ROUND} submission rule" + (f"; next: {r.fix}" if r.fix else "")
        if mode == "warn":
            detail += " (warning only: --mlperf-submission-checks=warn)"
        status = WARN if mode == "warn" else FAIL
        # the reason names the rule as "submission <rule>", the table as "submission:<rule>"
        said = reason_line(Check(f"submission {r.name}", r.value, r.expected, status, detail))
        checks.append(
            Check(f"submission:{r.name}", r.value, r.expected, status, detail, reason=said)
        )
    return decide(checks, prior=verdict)


def submission_record(results: list[Check], mode: str) -> dict[str, Any]:
    """The ``submission`` object of a result record (``ready``: every rule met; a rule
    that could not be judged is listed in ``unknown`` and makes it not ready, not failed)."""
    record: dict[str, Any] = {
        "round": ROUND,
        "mode": mode,
        "ready": all(r.ok for r in results),
        "rules": [r.rule_dict() for r in results],
    }
    unknown = [r.name for r in results if r.skipped]
    if unknown:
        record["unknown"] = unknown
    return record


def judge_item(
    mode: str,
    benchmark: str,
    scenario: str,
    item_mode: str,
    parsed: ParsedLog,
    verdict: Verdict,
    accuracy: Mapping[str, Any] | None,
    log_dir: Path,
    staging: Path,
) -> tuple[Verdict, dict[str, Any]]:
    """Every rule that concerns one item (accuracy items: staged into ``staging`` first).

    Returns the verdict with the rules applied (``mode`` ``fail`` or ``warn``) and the
    record's ``submission`` object.
    """
    rules = load_rules()
    results = check_item(
        rules, benchmark, scenario, item_mode, parsed.loadgen, parsed.errors, parsed.result_validity
    )
    staged = None
    if accuracy is not None:
        staged, more = stage_and_check_accuracy(rules, log_dir, staging, accuracy)
        results.extend(more)
    record = submission_record(results, mode)
    if staged is not None:
        record["accuracy_dir"] = str(staged)
    return apply_to_verdict(verdict, results, mode), record
