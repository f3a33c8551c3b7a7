"""The reports' pytest glue: pytest-html's summary, title and per-item extras, and the
JUnit XML suite properties; what they show is made by ``report/`` (no pytest there)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.results.index import RunIndex, settings_record


def add_suite_properties(
    config: pytest.Config, host: Mapping[str, Any], run: Mapping[str, Any] | None = None
) -> None:
    """Add the run and host records to the JUnit XML as test-suite properties (--junitxml)."""
    from _pytest.junitxml import xml_key

    from pytest_mlperf.report.junit import host_properties, run_properties

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    for name, value in [*run_properties(run or {}), *host_properties(host)]:
        xml.add_global_property(name, value)


def add_html_extras(
    config: pytest.Config, report: pytest.TestReport, records: list[dict[str, Any]]
) -> None:
    """pytest-html extras per record: checks, LoadGen figures and links to the logs (also
    for records whose log paths moved to the controller)."""
    from pytest_html import extras

    from pytest_mlperf.report.html import item_html

    htmlpath = getattr(config.option, "htmlpath", None)
    report_dir = Path(htmlpath).resolve().parent if htmlpath else None
    existing = list(getattr(report, "extras", []))
    report.extras = [*existing, *(extras.html(item_html(r, report_dir)) for r in records)]  # type: ignore[attr-defined]


class HtmlHooks:
    """Registered only when pytest-html is active."""

    def __init__(self, config: pytest.Config, index: RunIndex) -> None:
        self.config = config
        self.index = index

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        """Add the MLPerf results table and the host record to the summary."""
        from pytest_mlperf.report.html import summary_html

        index = self.index
        self._set_title()
        if index.records:
            prefix.append(
                summary_html(
                    index.records,
                    index.host,
                    str(index.store.root),
                    settings=settings_record(index.run_config),
                    self_contained=bool(self.config.getoption("self_contained_html", False)),
                )
            )
        history = index.run_config.history
        if index.records and history is not None:  # saved at sessionfinish, before
            from pytest_mlperf.history.series import report_section

            prefix.append(report_section(history.location, index.records))
        if index.fleet:
            from pytest_mlperf.report.html import fleet_html

            prefix.append(fleet_html(index.fleet))

    def pytest_html_report_title(self, report: Any) -> None:
        """Name the run in the page title (and heading) instead of the file name; asked at
        session start, so the title is completed when the summary is made."""
        if self.index.run_config.enabled:
            report.title = f"MLPerf run {self.index.store.run_id} ({self.index.backend_name})"
        self._report = report

    def _set_title(self) -> None:
        from pytest_mlperf.report.html import report_title

        index = self.index
        report = getattr(self, "_report", None)
        if report is not None and index.records:
            report.title = report_title(index.records, index.store.run_id, index.backend_name)
