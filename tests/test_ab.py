"""--mlperf-ab: the paired statistics (known inputs, known intervals), the option's syntax,
and A/B sessions on the reference backend (A/A never regresses; a real slowdown does)."""

from __future__ import annotations

import math
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_mlperf.abtest import AbRun, AbSpec, AbVariant, ab_check, ab_record, parse_ab
from pytest_mlperf.catalog import Catalog, default_dirs, load_catalog
from pytest_mlperf.checks import Outcome, decide
from pytest_mlperf.errors import ConfigError
from pytest_mlperf.history.paired import (
    INCONCLUSIVE,
    PASSED,
    REGRESSED,
    judge_ratios,
    performance_ratio,
    ratio_interval,
    t_quantile,
)
from tests.conftest import RunMlperf, load_results

#: Student's t, two-sided 95 %, from the printed tables (dof 2 and 4)
T_TABLE = {2: 4.303, 4: 2.776}


def test_t_quantiles_match_the_printed_table() -> None:
    for dof, value in T_TABLE.items():
        assert t_quantile(0.975, dof) == pytest.approx(value, abs=5e-4)


def test_interval_of_symmetric_log_ratios_is_known() -> None:
    # logs -0.1, 0, 0.1: mean 0, s = 0.1, n = 3: exp(± 4.303 x 0.1 / √3) = 0.780 .. 1.282
    ratio, low, high = ratio_interval([math.exp(-0.1), 1.0, math.exp(0.1)])
    assert ratio == pytest.approx(1.0)
    assert low == pytest.approx(0.7800, abs=2e-4)
    assert high == pytest.approx(1.2820, abs=2e-4)


def test_interval_of_five_rounds_by_hand() -> None:
    ratios = [0.90, 0.92, 0.91, 0.89, 0.93]
    logs = [math.log(r) for r in ratios]
    half = T_TABLE[4] * statistics.stdev(logs) / math.sqrt(5)
    mean = statistics.fmean(logs)
    ratio, low, high = ratio_interval(ratios)
    assert ratio == pytest.approx(math.exp(mean))
    assert low == pytest.approx(math.exp(mean - half), rel=1e-4)
    assert high == pytest.approx(math.exp(mean + half), rel=1e-4)
    assert 0.89 < low < ratio < high < 0.93


def test_decisions_against_the_tolerance() -> None:
    steady = judge_ratios([0.99, 1.01, 1.0, 0.995, 1.005], 5)
    assert steady.status == PASSED and "no regression beyond the tolerance" in steady.reason
    slow = judge_ratios([0.90, 0.92, 0.91, 0.89, 0.93], 5)
    assert slow.status == REGRESSED and slow.high < 0.95
    assert "regressed 9.0 %" in slow.reason and "95 % CI" in slow.reason
    wide = judge_ratios([0.85, 1.10, 0.95, 1.02, 0.90], 5)
    assert wide.status == INCONCLUSIVE and wide.low < 0.95 < wide.high
    # the same slowdown within a wider tolerance: the interval excludes a regression beyond it
    assert judge_ratios([0.90, 0.92, 0.91, 0.89, 0.93], 15).status == PASSED


def test_ratios_need_two_rounds_and_positive_values() -> None:
    with pytest.raises(ValueError, match="at least 2 rounds"):
        ratio_interval([1.0])
    with pytest.raises(ValueError, match="positive"):
        performance_ratio(0.0, 1.0, True)


def test_latency_ratio_is_inverted_so_below_one_is_slower() -> None:
    assert performance_ratio(100.0, 90.0, higher_is_better=True) == pytest.approx(0.9)
    assert performance_ratio(10.0, 12.5, higher_is_better=False) == pytest.approx(0.8)


def _spec(rounds: int = 3) -> AbSpec:
    return AbSpec(AbVariant("A", {}), AbVariant("B", {"threads": 1}), rounds)


def test_order_alternates_ab_ba() -> None:
    assert "".join(_spec(3).order) == "ABBAAB"
    assert "".join(_spec(4).order) == "ABBAABBA"


def _runs(spec: AbSpec, a: list[float | None], b: list[float | None]) -> list[AbRun]:
    values = {"A": iter(a), "B": iter(b)}
    return [
        AbRun(s, Path(f"/r/{i}"), next(values[s]), "VALID", None) for i, s in enumerate(spec.order)
    ]


def test_record_pairs_each_round_and_decides() -> None:
    spec = _spec(3)
    ab = ab_record(
        spec,
        "Offline",
        ("result_samples_per_second", "samples/s"),
        _runs(spec, [100.0, 110.0, 90.0], [50.0, 55.0, 45.0]),
        5,
    )
    assert ab["order"] == "ABBAAB" and ab["ratios"] == [0.5, 0.5, 0.5]
    assert ab["status"] == REGRESSED
    assert [r["value"] for r in ab["candidate"]["runs"]] == [50.0, 55.0, 45.0]
    assert ab["candidate"]["describe"] == "threads=1"
    assert ab["baseline"]["describe"] == "the session's options"
    verdict = decide([ab_check(ab)])
    assert verdict.outcome == Outcome.FAILED and verdict.reasons[0].startswith("A/B regressed")


def test_record_without_a_value_is_inconclusive_and_skips() -> None:
    spec = _spec(2)
    ab = ab_record(
        spec,
        "Offline",
        ("result_samples_per_second", "samples/s"),
        _runs(spec, [100.0, 100.0], [None, 99.0]),
        5,
    )
    assert ab["status"] == INCONCLUSIVE and "round 1 (candidate)" in ab["reason"]
    verdict = decide([ab_check(ab)])
    assert verdict.outcome == Outcome.SKIPPED


def test_server_compares_p99_latency() -> None:
    spec = _spec(2)
    ab = ab_record(
        spec,
        "Server",
        ("result_completed_samples_per_sec", "samples/s"),
        _runs(spec, [10e6, 10e6], [20e6, 20e6]),
        5,
    )
    assert ab["unit"] == "ns" and "99.00_percentile" in str(ab["compared"])
    assert ab["ratios"] == [0.5, 0.5] and ab["status"] == REGRESSED


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(default_dirs())


@pytest.mark.parametrize(
    ("value", "rounds", "message"),
    [
        ("threads=1", None, "two option sets separated by one ';'"),
        ("a;b;c", None, "two option sets separated by one ';'"),
        (
            "speed=1;threads=1",
            None,
            "unknown key 'speed' in the baseline side; valid keys: threads, config_ver",
        ),
        ("threads=1;threads", None, "'threads' in the candidate side is not key=value"),
        (
            "threads=0;threads=1",
            None,
            "threads='0' in the baseline side is not a whole number of threads; valid: 1 to 2",
        ),
        ("threads=1;threads=x", None, "threads='x' in the candidate side"),
        ("threads=1,threads=2;", None, "'threads' given twice"),
        (
            ";config_ver=high_accuracy",
            None,
            "config_ver='high_accuracy' in the candidate side; valid for bert-99: default, triton",
        ),
        (";", "1", "--mlperf-ab-rounds: '1' is not a whole number of rounds from 2 to 50"),
        (";", "x", "--mlperf-ab-rounds: 'x'"),
    ],
)
def test_bad_ab_values_name_the_value_and_the_valid_ones(
    catalog: Catalog, value: str, rounds: str | None, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_ab(value, rounds, "reference", [catalog.resolve("bert-99", None)], cpus=2)
    assert message in str(info.value)


def test_a_backend_without_declared_keys_has_no_variants(catalog: Catalog) -> None:
    with pytest.raises(ConfigError) as info:
        parse_ab("threads=1;threads=2", None, "custom", [catalog.resolve("bert-99", None)])
    assert "the custom backend declares no A/B keys; valid backends: reference, nvidia" in str(
        info.value
    )
    with pytest.raises(ConfigError, match="--mlperf-ab-rounds=3 needs --mlperf-ab"):
        parse_ab(None, "3", "reference", [])


def test_each_backend_declares_its_keys() -> None:
    from pytest_mlperf.backends.ab import ab_keys
    from pytest_mlperf.backends.nvidia import NvidiaBackend
    from pytest_mlperf.backends.reference import ReferenceBackend

    assert [k.name for k in ab_keys("reference")] == ["threads", "config_ver"]
    assert [k.name for k in ab_keys("nvidia")] == ["image", "harness_dir"]
    assert ab_keys("reference") == ReferenceBackend.ab_keys
    assert ab_keys("nvidia") == NvidiaBackend.ab_keys
    assert ab_keys("custom") == ()


def test_nvidia_sides_set_the_image_or_the_checkout(catalog: Catalog, tmp_path: Path) -> None:
    bert = [catalog.resolve("bert-99", None)]
    spec = parse_ab("image=repo/harness:a;image=repo/harness:b", "3", "nvidia", bert)
    assert spec is not None and spec.rounds == 3
    assert spec.baseline.backend_options == {"image": "repo/harness:a"}
    assert spec.candidate.backend_options == {"image": "repo/harness:b"}
    (tmp_path / "b").mkdir()
    spec = parse_ab(f";harness_dir={tmp_path / 'b'}", None, "nvidia", bert)
    assert spec is not None and spec.baseline.backend_options == {}
    assert spec.candidate.backend_options == {"harness_dir": tmp_path / "b"}
    assert spec.candidate.describe() == f"harness_dir={tmp_path / 'b'}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "threads=1;threads=2",
            "unknown key 'threads' in the baseline side; valid keys: image, harness_dir",
        ),
        (
            ";config_ver=default",
            "unknown key 'config_ver' in the candidate side; valid keys: image, harness_dir",
        ),
        (
            "image=Repo Harness;",
            "image='Repo Harness' in the baseline side is not a Docker image reference; valid: "
            "[registry/]name[:tag][@sha256:digest]",
        ),
        (";harness_dir=no/such/dir", "harness_dir='no/such/dir' in the candidate side is not a "),
    ],
)
def test_bad_nvidia_ab_values_name_the_key_and_the_valid_ones(
    catalog: Catalog, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_ab(value, None, "nvidia", [catalog.resolve("bert-99", None)])
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mlperf-ab=threads=1"], "*--mlperf-ab: 'threads=1' must be two option sets*"),
        (
            ["--mlperf-ab=bogus=1;"],
            "*unknown key 'bogus' in the baseline side; valid keys: threads, config_ver*",
        ),
        (["--mlperf-ab=;", "--mlperf-repeat=3"], "*--mlperf-ab runs its own rounds*"),
        (
            ["--mlperf-ab=threads=1;", "--mlperf-backend=nvidia"],
            "*unknown key 'threads' in the baseline side; valid keys: image, harness_dir*",
        ),
    ],
)
def test_ab_usage_errors(run_mlperf: RunMlperf, args: list[str], message: str) -> None:
    result = run_mlperf("--mlperf-benchmarks=tiny", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_aa_session_passes_or_is_inconclusive_and_records_both_sides(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    result = run_mlperf(
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        "--mlperf-ab=;",
        "--mlperf-ab-rounds=3",
        "--junitxml=junit.xml",
        "--html=report.html",
        "-rs",
    )
    outcomes = result.parseoutcomes()
    assert set(outcomes) <= {"passed", "skipped"}, outcomes
    data = load_results(pytester.path)
    (item,) = data["items"]
    ab = item["ab"]
    assert ab["status"] in (PASSED, INCONCLUSIVE), ab["reason"]
    assert ab["order"] == "ABBAAB" and len(ab["ratios"]) == 3
    for side in ("baseline", "candidate"):
        runs = ab[side]["runs"]
        assert len(runs) == 3
        for run in runs:
            assert (Path(run["log_dir"]) / "mlperf_log_detail.txt").is_file()
    # the item is the candidate: its repeat and metric are the candidate's runs
    assert item["repeat"]["count"] == 3
    assert sorted(item["repeat"]["values"]) == sorted(
        r["metric_value"] for r in ab["candidate"]["runs"]
    )
    assert "/ab-" in item["log_dir"] and item["log_dir"].endswith("-B")
    assert data["settings"]["ab"] == {
        "baseline": "the session's options",
        "candidate": "the session's options",
        "rounds": 3,
    }
    if ab["status"] == INCONCLUSIVE:
        result.stdout.fnmatch_lines(["*A/B inconclusive: the interval straddles*"])
    props = {
        str(p.get("name")): str(p.get("value"))
        for p in ET.parse(pytester.path / "junit.xml").iter("property")
    }
    prefix = "mlperf/tiny-99/Offline/performance"
    assert props[f"{prefix}/ab_status"] == ab["status"]
    assert props[f"{prefix}/ab_rounds"] == "3"
    assert float(props[f"{prefix}/ab_ratio"]) == pytest.approx(ab["ratio"])
    assert len(props[f"{prefix}/ab_baseline_values"].split(";")) == 3
    html = (pytester.path / "report.html").read_text()
    assert 'id="mlperf-ab"' in html and "ABBAAB" in html


def test_a_real_slowdown_of_the_candidate_regresses(
    run_mlperf: RunMlperf, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_MLPERF_BENCH_SLOWDOWN_B", "90")
    result = run_mlperf(
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        "--mlperf-ab=threads=1;threads=1",
        "--mlperf-ab-rounds=3",
    )
    result.assert_outcomes(failed=1)
    (item,) = load_results(pytester.path)["items"]
    ab = item["ab"]
    assert ab["status"] == REGRESSED, ab["reason"]
    assert ab["ci_high"] < 0.95
    assert ab["baseline"]["options"] == {"threads": 1}
    assert item["settings"]["bench_slowdown_pct"] == 90
    assert any("A/B regressed" in r for r in item["verdict"]["reasons"])
    result.stdout.fnmatch_lines(["*ab*CI above 0.950 (tolerance 5 %)*FAIL*"])
