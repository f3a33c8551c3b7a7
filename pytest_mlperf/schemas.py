"""Validate data files and records against the JSON Schemas in ``schemas/``."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from pytest_mlperf import jsonstrict
from pytest_mlperf._paths import data_dir
from pytest_mlperf.errors import DataError

SCHEMA_NAMES = (
    "benchmark",
    "thresholds",
    "result",
    "results",
    "host",
    "system",
    "preflight",
    "submission",
    "compliance",
    "targets",
)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``schemas/<name>.schema.json``."""
    if name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r}; valid: {', '.join(SCHEMA_NAMES)}")
    path = data_dir("schemas") / f"{name}.schema.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


@cache
def _registry() -> Registry[Any]:
    resources = []
    for name in SCHEMA_NAMES:
        schema = load_schema(name)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema, registry=_registry())
    return validator


def validate(instance: Any, name: str, source: str) -> None:
    """Raise :class:`DataError` naming ``source`` and the field when ``instance`` is invalid."""
    error = jsonschema.exceptions.best_match(_validator(name).iter_errors(instance))
    if error is not None:
        field = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise DataError(f"{source}: field {field}: {error.message}")


def load_data_file(path: Path, name: str, what: str) -> Any:
    """Read the JSON data file ``path`` and validate it against schema ``name``.

    Raises :class:`DataError` naming the file: ``cannot read <what>`` when it is missing or
    not JSON (or holds NaN, Infinity, 1e309, a huge integer or deep nesting), the field when
    it breaks the schema.
    """
    try:
        raw = jsonstrict.load_file(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read {what}: {exc}") from exc
    validate(raw, name, str(path))
    return raw
