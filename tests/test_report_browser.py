"""The HTML report opened in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by ``.ci/install-browser``) driven by Selenium.

pytest-html renders its result rows with JavaScript from a JSON blob, so only a browser
shows whether our per-item tables and plots really end up on the page.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.builders import limit, write_thresholds
from tests.conftest import RunMlperf, perf_record, requires_service

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1400,2000",
)
SKIP_HINT = "run .ci/install-browser (Debian: apt-get install chromium chromium-driver)"


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A headless Chromium; skips with the reason where none can be installed or started."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        requires_service("chromium", "selenium is not installed: pip install -e '.[test]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        requires_service("chromium", f"chromium/chromedriver not found: {SKIP_HINT}")
    # the driver path is given: Selenium Manager must neither download nor report anything
    monkeypatch.setenv("SE_OFFLINE", "true")
    monkeypatch.setenv("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    try:
        chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    except WebDriverException as exc:
        first = (exc.msg or str(exc)).strip().splitlines()[0]
        requires_service("chromium", f"chromium could not be started ({first}): {SKIP_HINT}")
    try:
        yield chrome
    finally:
        chrome.quit()


def _saved_baseline() -> dict[str, Any]:
    """A saved run far slower than any machine: every item improves on it."""

    def rec(scenario: str, name: str, value: float, unit: str) -> dict[str, Any]:
        return perf_record("tiny-99", scenario, name, value, unit)

    return {
        "schema_version": 1,
        "run_id": "saved-run",
        "items": [
            rec("Offline", "result_samples_per_second", 1.0, "samples/s"),
            rec("Server", "result_completed_samples_per_sec", 1.0, "samples/s"),
            rec("SingleStream", "result_90.00_percentile_latency_ns", 1e12, "ns"),
        ],
    }


def test_report_in_a_real_browser(
    browser: Any, run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    pytester.makefile(".json", saved=json.dumps(_saved_baseline()))
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline,Server,SingleStream",
        "--mlperf-fast",
        "--mlperf-baseline=saved.json",
        "--html=report.html",
    )
    result.assert_outcomes(passed=3)
    report = pytester.path / "report.html"

    started = time.perf_counter()
    browser.get(report.as_uri())
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results-table tbody"))

    # summary: settings, every item with value, threshold, baseline, change and verdict, host
    settings = browser.find_element(By.ID, "mlperf-settings").text
    assert "baseline" in settings and "saved.json" in settings and "5 %" in settings
    rows = browser.find_elements(By.CSS_SELECTOR, "#mlperf-summary tr")
    header = [c.text for c in rows[0].find_elements(By.TAG_NAME, "th")]
    assert header[-5:] == ["threshold", "baseline", "change", "verdict", "reason"]
    cells = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows[1:]]
    assert [c[1] for c in cells] == ["Offline", "Server", "SingleStream"]
    assert all(c[-2] == "PASSED" and c[-3].endswith("% improved") for c in cells)
    assert all(c[-1] == "" for c in cells)  # a passed item has no reason
    assert "reference-cpu" in browser.find_element(By.ID, "mlperf-host").text

    # per item (rendered by pytest-html's JavaScript): checks, metrics, plots, log links
    browser.find_element(By.ID, "show_all_details").click()
    checks = browser.find_elements(By.CSS_SELECTOR, "table.mlperf-checks")
    assert len(checks) == 3 and all(t.is_displayed() for t in checks)
    assert all("baseline" in t.text and "improved" in t.text for t in checks)
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.mlperf-metrics")) == 3
    plots = browser.find_elements(By.CSS_SELECTOR, "img.mlperf-plot")
    loaded = "return arguments[0].complete && arguments[0].naturalWidth > 0"
    wait.until(lambda d: all(d.execute_script(loaded, img) for img in plots))
    kinds = sorted(p.get_attribute("class").split()[-1] for p in plots)
    assert kinds == ["mlperf-plot-over-time"] + ["mlperf-plot-percentiles"] * 3
    for img in plots:
        assert img.get_attribute("src").startswith("data:image/png;base64,")
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 200
        assert img.is_displayed()
    links = browser.find_elements(By.CSS_SELECTOR, "a[href$='mlperf_log_detail.txt']")
    assert len(links) == 3
    assert browser.find_elements(By.CSS_SELECTOR, "a[href$='mlperf_log_trace.json']")

    # nothing came from the network: every resource is the report's own file or inline
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(r.startswith(("file:", "data:")) for r in resources), resources
    print(f"browser check: {time.perf_counter() - started:.2f} s, {report.stat().st_size} bytes")


def test_failed_items_open_with_their_reason(
    browser: Any, run_mlperf: RunMlperf, pytester: pytest.Pytester
) -> None:
    """A failed item: its reason in the items table, its checks open without a click, the
    run named in the page title, and the guidance for CI artefacts (not self-contained)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    write_thresholds(
        pytester.path / "limits.json",
        limit("tiny-99", "Offline", min_samples_per_second=1e9),
        system="reference-cpu",
    )
    result = run_mlperf(
        "--mlperf-benchmarks=tiny",
        "--mlperf-scenarios=Offline",
        "--mlperf-mode=all",  # the accuracy item passes on any machine
        "--mlperf-fast",
        "--mlperf-thresholds=limits.json",
        "--html=report.html",
    )
    result.assert_outcomes(passed=1, failed=1)
    browser.get((pytester.path / "report.html").as_uri())
    WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#results-table tbody")
    )
    assert browser.title.startswith("MLPerf tiny-99 (reference, reference-cpu): 1 not passed of 2")
    rows = browser.find_elements(By.CSS_SELECTOR, "#mlperf-summary tr")
    reasons = {
        r.find_elements(By.TAG_NAME, "td")[2].text: r.find_element(
            By.CLASS_NAME, "mlperf-reason"
        ).text
        for r in rows[1:]
    }
    assert reasons["accuracy"] == ""
    assert reasons["performance"].startswith("threshold: ")
    assert "1e+09 samples/s" in reasons["performance"]
    # no "show all details" click: the failed item's checks are open, the passed one's not
    checks = [t for t in browser.find_elements(By.CSS_SELECTOR, "table.mlperf-checks")]
    shown = [t.text for t in checks if t.is_displayed()]
    assert len(shown) == 1 and "FAIL" in shown[0]
    note = browser.find_element(By.ID, "mlperf-self-contained").text
    assert "--self-contained-html" in note
    shot = pytester.path / "report.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
