"""Which item a node id names: ``mlperf::<benchmark>[<scenario>-<mode>]``, built and parsed here."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The generated items' collector: its node id is the prefix of theirs.
COLLECTOR = "mlperf"
_NAME = re.compile(
    r"^(.+)\[(Offline|Server|SingleStream|MultiStream)-(performance|accuracy|TEST\d\d)\]$"
)

#: What a command-line node id may name: every item, a variant's, or one item.
_SELECTION = re.compile(rf"^{COLLECTOR}(?:::([^\[\]]+)(?:\[([A-Za-z]+)-([A-Za-z0-9]+)\])?)?$")


def parse_selection(nodeid: str) -> tuple[str | None, str | None, str | None] | None:
    """A node id given on the command line - ``mlperf`` (every generated item),
    ``mlperf::bert-99`` (a variant's) or ``mlperf::bert-99[Server-performance]`` - as
    (variant, scenario, mode), None where it does not say; None for any other argument."""
    match = _SELECTION.match(nodeid)
    if match is None:
        return None
    return match.group(1), match.group(2), match.group(3)


@dataclass(frozen=True)
class ItemId:
    """A generated item's identity: benchmark variant × scenario × mode (or compliance test)."""

    benchmark: str
    scenario: str
    mode: str

    @property
    def name(self) -> str:
        """``bert-99[Offline-performance]``: the item's name under the collector."""
        return f"{self.benchmark}[{self.scenario}-{self.mode}]"

    @property
    def nodeid(self) -> str:
        """``mlperf::bert-99[Offline-performance]``."""
        return f"{COLLECTOR}::{self.name}"

    @classmethod
    def parse(cls, nodeid: str) -> ItemId | None:
        """The identity a generated item's node id names; None for any other node id."""
        prefix = f"{COLLECTOR}::"
        if not nodeid.startswith(prefix):
            return None
        match = _NAME.match(nodeid[len(prefix) :])
        if match is None:
            return None
        return cls(match.group(1), match.group(2), match.group(3))
