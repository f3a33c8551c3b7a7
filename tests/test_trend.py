"""The trend page: change points (ruptures), the SVG of plain series, series from a history
store, the page in headless Chromium, and the section in the HTML report."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.history.changepoints import change_points, noise_sigma, segments
from pytest_mlperf.history.series import load_trend, trend_series, write_page
from pytest_mlperf.history.store import (
    HistoryError,
    HistoryRecord,
    HistorySession,
    open_store,
)
from pytest_mlperf.report.trend import TrendPoint, TrendSeries, analyse, trend_html
from tests.conftest import RunMlperf
from tests.test_report_browser import browser  # noqa: F401  (the headless Chromium fixture)


def _noisy(seed: int, levels: list[tuple[float, int]], sd: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(level, sd) for level, n in levels for _ in range(n)]


def test_a_step_is_found_where_it_is() -> None:
    values = _noisy(3, [(100.0, 15), (80.0, 10)], 3.0)
    assert change_points(values) == [15]
    segs = segments(values, [15])
    assert [(s.start, s.stop) for s in segs] == [(0, 15), (15, 25)]
    assert segs[0].mean == pytest.approx(100, abs=3) and segs[1].mean == pytest.approx(80, abs=3)


def test_noise_alone_and_short_series_have_no_change_point() -> None:
    for seed in range(5):
        assert change_points(_noisy(seed, [(100.0, 40)], 5.0)) == [], seed
    assert change_points([100.0, 50.0, 100.0, 50.0, 100.0]) == []  # shorter than 2 x 3
    assert change_points([100.0] * 10) == []
    assert change_points([100.0] * 5 + [90.0] * 5) == [5]


def test_noise_sigma_ignores_a_step() -> None:
    flat = _noisy(1, [(100.0, 30)], 2.0)
    stepped = flat[:15] + [v - 40 for v in flat[15:]]
    assert noise_sigma(stepped) == pytest.approx(noise_sigma(flat), rel=0.3)
    assert 1.0 < noise_sigma(flat) < 3.5


def _record(
    i: int, value: float | None, *, status: str | None = None, fp: str = "fp1", good: bool = True
) -> HistoryRecord:
    return HistoryRecord(
        run_id=f"run-{i:02d}",
        item_key="bert-99/Offline/performance",
        ref="main",
        fingerprint_id=fp,
        fingerprint={"backend": "reference"},
        value=value,
        unit="samples/s",
        compared="result_samples_per_second",
        higher_is_better=True,
        good=good,
        outcome="passed" if good else "failed",
        validity="VALID",
        recorded_at=f"2026-12-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00",
        record={"baseline": {"status": status}} if status else {},
    )


def _history() -> list[HistoryRecord]:
    values = _noisy(7, [(260.0, 12), (200.0, 8)], 5.0)
    out = [_record(i, v, status="unchanged" if i else None) for i, v in enumerate(values)]
    out[12] = _record(12, values[12], status="regressed", good=False)
    out[15] = _record(15, values[15], status="inconclusive")
    return out


def test_series_group_by_item_and_fingerprint_oldest_first() -> None:
    records = list(reversed(_history())) + [_record(30, 255.0, fp="fp2")]
    series = trend_series(records)
    assert len(series) == 2
    first = series[0]
    assert [p.run_id for p in first.points] == [f"run-{i:02d}" for i in range(20)]
    assert first.points[12].decision == "regressed" and not first.points[12].good
    assert first.points[0].decision is None
    assert "fingerprint fp1" in first.note and "ref main" in first.note
    assert trend_series(records, items={"other/Offline/performance"}) == []


def test_svg_marks_points_decisions_band_and_change_point() -> None:
    (series,) = trend_series(_history())
    changes, segs = analyse(series)
    assert changes == [12] and len(segs) == 2
    page = trend_html([series])
    assert page.count('<circle class="mlperf-trend-point"') == 20
    assert page.count('data-decision="regressed"') == 1
    assert page.count('data-decision="inconclusive"') == 1
    assert page.count('<line class="mlperf-trend-change" data-index="12"') == 1
    assert page.count('<rect class="mlperf-trend-band"') == 2
    assert "change point before run run-12" in page and "<script" not in page


def test_latency_series_are_shown_in_ms_and_missing_values_are_skipped() -> None:
    pts = tuple(TrendPoint(f"t{i}", 5e6 if i != 2 else None, f"r{i}") for i in range(4))
    page = trend_html([TrendSeries("bert-99/SingleStream/performance", "ns", pts, False)])
    assert page.count("<circle") == 3 and "5 ms" in page and "lower is better" in page
    assert "no records in the history yet" in trend_html([])
    one = trend_html(
        [
            TrendSeries(
                "x/Offline/performance", "samples/s", (TrendPoint("t0", 1.0, "r0", good=False),)
            )
        ]
    )
    assert one.count(">t0<") == 1 and "not good: never judged against" in one


def _store(path: Path) -> Path:
    with open_store(path) as store:
        for r in _history():
            session = HistorySession(
                run_id=r.run_id,
                ref="main",
                good=r.good,
                interrupted=False,
                source="test",
                added_at=r.recorded_at,
            )
            store.add_session(session, [r])
    return path


def test_page_from_a_store(tmp_path: Path) -> None:
    store = _store(tmp_path / "history.sqlite")
    assert len(load_trend(store)) == 1
    out = tmp_path / "trend.html"
    assert write_page(store, out) == 1
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and 'id="mlperf-trend"' in text
    with pytest.raises(HistoryError, match="does not exist"):
        load_trend(tmp_path / "missing.sqlite")
    with pytest.raises(HistoryError, match="cannot write the trend page"):
        write_page(store, tmp_path / "no-such-dir" / "trend.html")


@pytest.fixture
def chrome(request: pytest.FixtureRequest) -> Any:
    """The report tests' headless Chromium; where it cannot start, in CI a failure."""
    try:
        return request.getfixturevalue("browser")
    except pytest.skip.Exception as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Chromium needed in CI: {exc}")
        raise


def test_trend_page_in_a_real_browser(chrome: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    out = tmp_path / "trend.html"
    write_page(_store(tmp_path / "history.sqlite"), out)
    chrome.get(out.as_uri())
    svg = chrome.find_element(By.CSS_SELECTOR, "#mlperf-trend svg.mlperf-trend")
    assert svg.is_displayed() and svg.size["width"] >= 700 and svg.size["height"] >= 200
    points = chrome.find_elements(By.CSS_SELECTOR, "circle.mlperf-trend-point")
    assert len(points) == 20 and all(p.is_displayed() for p in points)
    # points are laid out left to right in time and the regressed one sits below the start
    xs = [float(p.get_attribute("cx")) for p in points]
    assert xs == sorted(xs)
    regressed = chrome.find_element(By.CSS_SELECTOR, "circle[data-decision='regressed']")
    assert float(regressed.get_attribute("cy")) > float(points[0].get_attribute("cy"))
    change = chrome.find_element(By.CSS_SELECTOR, "line.mlperf-trend-change")
    assert change.is_displayed()
    bands = chrome.find_elements(By.CSS_SELECTOR, "rect.mlperf-trend-band")
    assert len(bands) == 2 and all(b.size["width"] > 50 for b in bands)
    table = chrome.find_element(By.CSS_SELECTOR, "table.mlperf-trend-table").text
    assert "before run run-12" in table and "1 regressed" in table
    resources = chrome.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(r.startswith(("file:", "data:")) for r in resources), resources
    shot = tmp_path / "trend.png"
    chrome.save_screenshot(str(shot))
    print(f"screenshot: {shot}")


def test_report_has_the_trend_section_with_a_history_store(
    run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    args = (
        "--mlperf-benchmarks=tiny-99",
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        "--mlperf-history=store.sqlite",
        "--html=report.html",
    )
    outcomes = run_mlperf(*args).parseoutcomes()  # judged on an empty history: a skip
    assert outcomes == {"skipped": 1} or outcomes == {"passed": 1}, outcomes
    html = (pytester.path / "report.html").read_text()
    assert 'id="mlperf-trend"' in html
    assert 'data-item="tiny-99/Offline/performance"' in html
    assert html.count('class="mlperf-trend-point"') == 1


def test_history_command_writes_the_trend_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_mlperf.cli import main as cli_main

    store, out = str(_store(tmp_path / "h.sqlite")), tmp_path / "trend.html"
    assert cli_main(["history", "--store", store, "--html", str(out)]) == 0
    assert 'class="mlperf-trend-point"' in out.read_text()
    assert f"trend page: {out} (1 series)" in capsys.readouterr().out
    missing = str(tmp_path / "missing.sqlite")
    assert cli_main(["history", "--store", missing, "--html", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["history", "--store", store]) == 2
    assert "give an ACTION" in capsys.readouterr().err
    assert cli_main(["history", "--store", store, "--html", str(out), "list"]) == 0
