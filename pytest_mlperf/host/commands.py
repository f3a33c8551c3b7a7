"""Running host commands as argument lists, with a timeout; never through a shell."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    """What a command printed and returned; ``returncode`` None = command not found."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Ran and exited 0."""
        return self.returncode == 0


#: Runs one command; tests pass captured outputs through the same interface.
Runner = Callable[[Sequence[str]], CommandResult]


def run_command(argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
    """Run ``argv`` (no shell) and capture its output."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        return CommandResult(tuple(argv), None, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return CommandResult(tuple(argv), -1, "", f"{argv[0]}: timed out after {timeout:g} s")
    return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)
