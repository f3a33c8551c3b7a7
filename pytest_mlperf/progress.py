"""Progress of the running item, and what Ctrl-C does during a LoadGen run.

The runner opens an :class:`ItemProgress` per item (:func:`start_item`); a backend that
knows its LoadGen settings says so (:func:`loadgen_started`) and counts completed samples
(:func:`samples_done`, the reference SUT does). Lines go out through the session's
terminal writer: at a terminal one line redrawn about once a second, in CI (no TTY) a new
line every ``MLPERF_PROGRESS_INTERVAL`` seconds (default 30), the first one at once.

LoadGen cannot be stopped mid-run: on the first Ctrl-C (or SIGTERM) the SUT answers the
remaining queries at once, and :func:`on_interrupt` says so and how long that takes at most
(the rest of LoadGen's minimum duration); a second one writes results.json with the item
recorded as interrupted and exits at once (exit code 2, pytest's INTERRUPTED).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Writes one line; ``redraw`` True: replace the previous progress line (a terminal).
Emit = Callable[[str, bool], None]
INTERVAL_ENV = "MLPERF_PROGRESS_INTERVAL"
CI_INTERVAL_S = 30.0
TTY_INTERVAL_S = 1.0


def interval_s(tty: bool) -> float:
    """Seconds between progress lines: the environment's, else 1 at a terminal, 30 in CI."""
    value = os.environ.get(INTERVAL_ENV, "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return TTY_INTERVAL_S if tty else CI_INTERVAL_S


def duration(seconds: float) -> str:
    """``0.2 s``, ``42 s``, ``3 min 5 s``, ``1 h 02 min``."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass
class ItemProgress:
    """One item's progress; times from ``clock`` (injectable for tests)."""

    label: str
    emit: Emit
    tty: bool
    #: seconds the rest of the session needs after this item, given this item's expected length
    eta_after: Callable[[float], float | None] = lambda _expected: None
    #: writes results.json with this item interrupted (a second Ctrl-C, before exiting)
    on_hard_exit: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.monotonic
    min_duration_s: float | None = None
    min_queries: int | None = None
    #: the run's expected length when its query count, not its duration, decides it
    expected_s: float | None = None
    started: float | None = None
    samples: int | None = None
    interrupts: int = 0
    _last: float = field(default=float("-inf"))
    _drawn: bool = False

    def line(self) -> str:
        """``bert-99 Offline performance: 40 s of >= 600 s, 12,345 samples (>= 24,576 queries
        required), session ETA ~1 h 02 min``."""
        now = self.clock()
        elapsed = now - (self.started if self.started is not None else now)
        parts = [duration(elapsed)]
        if self.expected_s and self.expected_s > (self.min_duration_s or 0) * 1.05:
            parts[0] += f" of ~{duration(self.expected_s)} expected"
            if self.min_duration_s:
                parts[0] += f" (>= {duration(self.min_duration_s)} minimum)"
        elif self.min_duration_s:
            parts[0] += f" of >= {duration(self.min_duration_s)} minimum"
        if self.samples is not None:
            text = f"{self.samples:,} samples done"
            if self.min_queries:
                text += f" (>= {self.min_queries:,} queries required)"
            parts.append(text)
        elif self.min_queries:
            parts.append(f">= {self.min_queries:,} queries required")
        expected = max(self.expected_s or 0.0, self.min_duration_s or 0.0)
        rest = self.eta_after(expected)
        if rest is not None:
            left = max(0.0, expected - elapsed) + rest
            parts.append(f"session ETA ~{duration(left)}")
        return f"{self.label}: " + ", ".join(parts)

    def tick(self, force: bool = False) -> None:
        """Emit a line when the interval has passed (from the main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        now = self.clock()
        if not force and now - self._last < interval_s(self.tty):
            return
        self._last = now
        self.emit(self.line(), self.tty)
        self._drawn = self.tty

    def finish(self) -> None:
        """End a redrawn line, so the next output starts on its own line."""
        if self._drawn:
            self.emit("", False)
            self._drawn = False


_current: ItemProgress | None = None


def start_item(progress: ItemProgress) -> None:
    """The item now running (one at a time per process)."""
    global _current
    _current = progress


def end_item() -> None:
    """No item is running."""
    global _current
    if _current is not None:
        _current.finish()
    _current = None


def current() -> ItemProgress | None:
    """The running item's progress, if any."""
    return _current


def loadgen_started(
    min_duration_s: float | None, min_queries: int | None, expected_s: float | None = None
) -> None:
    """A backend starts LoadGen with these settings (and, where it knows its target rate,
    the expected length): the first progress line goes out."""
    if _current is None:
        return
    _current.min_duration_s = min_duration_s
    _current.min_queries = min_queries
    _current.expected_s = expected_s
    _current.started = _current.clock()
    _current.samples = None
    _current.tick(force=True)


def samples_done(count: int) -> None:
    """``count`` more samples completed (any thread); a line when the interval passed."""
    if _current is None:
        return
    _current.samples = (_current.samples or 0) + count
    _current.tick()


def on_interrupt(stop: Callable[[], None]) -> None:
    """Ctrl-C or SIGTERM during a LoadGen run: ``stop`` the SUT and say how long the wait is
    at most; a second one writes results.json and exits at once."""
    item = _current
    if item is None:
        stop()
        return
    item.interrupts += 1
    if item.interrupts == 1:
        stop()
        item.finish()
        left = ""
        if item.min_duration_s and item.started is not None:
            remaining = max(0.0, item.min_duration_s - (item.clock() - item.started))
            left = (
                f" (at most ~{duration(remaining + 5)}: the rest of its "
                f"{duration(item.min_duration_s)} minimum duration)"
            )
        item.emit(
            f"{item.label}: interrupted. LoadGen cannot be stopped mid-run; its remaining "
            f"queries are answered at once{left}, then results.json and the reports are "
            "written. This item's LoadGen figures are discarded. Press Ctrl-C again to exit "
            "now (results.json is written first, the JUnit/HTML reports are not).",
            False,
        )
        return
    item.emit(f"{item.label}: second interrupt: writing results.json and exiting now.", False)
    try:
        item.on_hard_exit()
    finally:
        os._exit(2)
