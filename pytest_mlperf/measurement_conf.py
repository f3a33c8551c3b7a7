"""What a result's measurement directory (``mlperf.conf``, ``user.conf``) sets, as the
v4.1 submission checker reads it.

The checker (mlcommons/inference ``tools/submission/submission_checker.py`` at c7db1c3f,
``check_measurement_dir``) reads ``<model>.<scenario>.sample_concatenate_permutation`` from
``mlperf.conf`` and then ``user.conf`` of ``measurements/<system>/<model>/<scenario>/``:
spaces removed, ``#`` lines and blank lines skipped, the model without its ``-99``/``-99.9``
suffix or ``*``, the scenario or ``*``; the first numeric match of a file decides (``1``:
on), and a match in ``user.conf`` overrides ``mlperf.conf``.
"""

from __future__ import annotations

from pathlib import Path

CONF_FILES = ("mlperf.conf", "user.conf")
EQUAL_ISSUE_KEY = "sample_concatenate_permutation"


def conf_model(model: str) -> str:
    """The model name a conf line uses: ``3d-unet-99.9`` -> ``3d-unet``."""
    return model.replace("-99.9", "").replace("-99", "")


def _setting(path: Path, model: str, scenario: str, key: str) -> int | None:
    """The first numeric value ``path`` sets for ``key`` of ``model``/``scenario``."""
    want = conf_model(model)
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.replace(" ", "")
        if not line or line.startswith("#") or line.count("=") != 1:
            continue  # the checker would raise on a line without exactly one "="
        name, value = line.split("=")
        parts = name.split(".")
        if len(parts) != 3:
            continue
        m, s, k = parts
        if k == key and m in (want, "*") and s in (scenario, "*") and value.isdigit():
            return int(value)
    return None


def has_conf(measurement_dir: Path | None) -> bool:
    """Whether ``measurement_dir`` holds an ``mlperf.conf`` or a ``user.conf``."""
    return measurement_dir is not None and any(
        (measurement_dir / name).is_file() for name in CONF_FILES
    )


def equal_issue_conf(measurement_dir: Path, model: str, scenario: str) -> bool:
    """Whether the measurement files turn equal-issue mode on for ``model``/``scenario``."""
    on = False
    for name in CONF_FILES:
        path = measurement_dir / name
        if path.is_file():
            value = _setting(path, model, scenario, EQUAL_ISSUE_KEY)
            if value is not None:
                on = value == 1
    return on
