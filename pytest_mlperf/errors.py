"""The exception tree: one root, each error carries a message a user can act on."""

from __future__ import annotations


class MlperfError(Exception):
    """Root of every error pytest-mlperf raises on purpose."""


class ConfigError(MlperfError):
    """A bad option or ini value; the plugin turns it into a pytest usage error."""


class DataError(MlperfError):
    """A benchmark, system or thresholds data file that is missing or malformed."""


class ParseError(MlperfError):
    """LoadGen output that is missing or cannot be read."""


class BackendError(MlperfError):
    """A backend could not prepare or run an item."""
