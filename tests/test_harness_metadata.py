"""The nvidia backend's cross-check of the harness's metadata.json against the LoadGen logs."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mlperf.backends.nvidia.harness import compare_metadata
from pytest_mlperf.results.loadgen import parse_dir
from tests.shared_data import PUBLISHED_LOGS, require_shared

KEY = "result_samples_per_second"


def _notes(value: Any) -> list[str]:
    parsed = parse_dir(require_shared(PUBLISHED_LOGS["nvidia-h200-3dunet-offline"]))
    metadata = {"scenario_key": KEY, KEY: value, "result_validity": "VALID"}
    return compare_metadata(metadata, parsed, quick=False)


def test_the_same_figure_gives_no_note() -> None:
    parsed = parse_dir(require_shared(PUBLISHED_LOGS["nvidia-h200-3dunet-offline"]))
    assert _notes(parsed.loadgen[KEY]) == []
    assert _notes(str(parsed.loadgen[KEY])) == []  # a number written as text is still one


@pytest.mark.parametrize("value", ["n/a", "", None, True, [1], {"v": 1}, "nan", "1e999"])
def test_a_figure_that_is_not_a_number_is_a_warning_naming_both(value: Any) -> None:
    """Before: ``float()`` raised and the item crashed; docs/faults.md promises a warning."""
    parsed = parse_dir(require_shared(PUBLISHED_LOGS["nvidia-h200-3dunet-offline"]))
    [note] = _notes(value)
    assert note == (
        f"{KEY}: metadata.json {value!r} (not a number), LoadGen log {parsed.loadgen[KEY]}"
    )


def test_a_different_figure_is_a_warning_naming_both() -> None:
    parsed = parse_dir(require_shared(PUBLISHED_LOGS["nvidia-h200-3dunet-offline"]))
    assert _notes(1) == [f"{KEY}: metadata.json 1, LoadGen log {parsed.loadgen[KEY]}"]
