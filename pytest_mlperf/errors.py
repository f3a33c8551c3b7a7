"""The exception tree: one root, each error carries a message a user can act on."""

from __future__ import annotations

from pytest_mlperf.redact import redact


class MlperfError(Exception):
    """Root of every error pytest-mlperf raises on purpose; its message has secrets masked.

    Every failure text (terminal, JUnit, HTML, the records' ``errors``) comes from here, so
    this is where a harness output tail with a token in it is masked.
    """

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            args = (redact(args[0]), *args[1:])
        super().__init__(*args)


class ConfigError(MlperfError):
    """A bad option or ini value; the plugin turns it into a pytest usage error."""


class DataError(MlperfError):
    """A benchmark, system or thresholds data file that is missing or malformed."""


class ParseError(MlperfError):
    """LoadGen output that is missing or cannot be read."""


class BackendError(MlperfError):
    """A backend could not prepare or run an item."""


class BackendSkip(BackendError):
    """The item cannot run on this system (e.g. the harness has no config for it): skipped
    with the reason, never an error."""
