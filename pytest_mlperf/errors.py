"""The exception tree: one root, each error carries a message a user can act on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pytest_mlperf.redact import redact


class ItemResult(Protocol):
    """What an item's ending carries: its result record (``results.record.MlperfResult``
    is one); named here by its shape so this leaf imports no record module."""

    @property
    def record(self) -> Mapping[str, Any]:
        """The item's result record (``result.json``)."""
        ...


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


# -- how an item ends without passing (not MlperfErrors: they carry the item's record) --
class ItemFailed(Exception):
    """The item ran, and pytest-mlperf's checks failed: the record says why."""

    def __init__(self, result: ItemResult) -> None:
        super().__init__(result.record["verdict"]["reasons"])
        self.result = result


class RunFailed(Exception):
    """The item could not produce a result; ``cause`` is the underlying error."""

    def __init__(self, result: ItemResult, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.result = result
        self.cause = cause
