"""What an accuracy evaluation returns, for every dataset kind and backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlperf.errors import DataError


class DatasetError(DataError):
    """An evaluation data set that is missing, malformed, or does not fit the log."""


@dataclass
class AccuracyFigures:
    """Accuracy of one accuracy log against one data set.

    ``metrics`` holds the primary metric first (``F1`` in percent, ``DICE`` as a fraction),
    then the secondary ones. The counts say how complete the log was: every sample the data
    set defines must be logged once; a missing or malformed response scores zero.
    """

    kind: str
    primary: str
    metrics: dict[str, float]
    samples: int
    logged: int = 0
    scored: int = 0
    missing: int = 0
    duplicates: int = 0
    malformed: int = 0
    unknown: int = 0
    log_bytes: int = 0
    seconds: float = 0.0
    dataset: str = ""
    problems: list[str] = field(default_factory=list)

    @classmethod
    def for_log(
        cls, kind: str, primary: str, samples: int, dataset: Path, log: Path
    ) -> AccuracyFigures:
        """Empty figures for scoring ``log`` against a data set of ``samples`` samples."""
        size = log.stat().st_size if log.is_file() else 0
        return cls(
            kind=kind,
            primary=primary,
            metrics={},
            samples=samples,
            dataset=str(dataset),
            log_bytes=size,
        )

    @property
    def value(self) -> float:
        """The primary metric's value."""
        return self.metrics[self.primary]

    @property
    def complete(self) -> bool:
        """True when every sample was logged exactly once with a well-formed response."""
        return self.missing == 0 and self.malformed == 0 and self.unknown == 0

    def coverage_text(self) -> str:
        """``512 of 512 samples scored`` plus what went wrong, for messages."""
        text = f"{self.scored} of {self.samples} samples scored"
        extra = [
            f"{n} {what}"
            for n, what in (
                (self.missing, "missing"),
                (self.malformed, "malformed"),
                (self.unknown, "not in the data set"),
                (self.duplicates, "duplicate (ignored)"),
            )
            if n
        ]
        return f"{text} ({', '.join(extra)})" if extra else text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts and timing (the metrics go into the record separately)."""
        return {
            "kind": self.kind,
            "dataset": self.dataset,
            "samples": self.samples,
            "logged": self.logged,
            "scored": self.scored,
            "missing": self.missing,
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "unknown": self.unknown,
            "log_bytes": self.log_bytes,
            "evaluate_s": round(self.seconds, 4),
            "problems": list(self.problems),
        }
