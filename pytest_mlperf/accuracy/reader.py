"""Stream LoadGen's ``mlperf_log_accuracy.json`` one entry at a time, in bounded memory.

The file is a JSON array of ``{"seq_id": N, "qsl_idx": N, "data": "<hex>"}`` objects, one
per response; on real runs it grows to hundreds of MB, so it is never loaded whole. The
reader keeps one read buffer (``chunk_size``) plus the entry being decoded, checks the
array's punctuation as it goes (a log cut short is an error, never a shorter result), and
decodes each ``data`` string with :func:`binascii.unhexlify`.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_mlperf.errors import ParseError

CHUNK_SIZE = 1 << 22
_WS = b" \t\r\n"
_NUMBER_FIELD = re.compile(rb'"(seq_id|qsl_idx)"\s*:\s*(-?\d+)')
_DATA_KEY = b'"data"'


class AccuracyLogError(ParseError):
    """``mlperf_log_accuracy.json`` is missing, cut short or malformed."""


@dataclass(frozen=True)
class LogEntry:
    """One response LoadGen logged: the sample index and the raw response bytes."""

    seq_id: int
    qsl_idx: int
    data: bytes


class _Buffer:
    """A growing window over the file: ``buf[pos:]`` is unread."""

    def __init__(self, fh: object, chunk_size: int) -> None:
        self._fh = fh
        self._chunk = chunk_size
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.consumed = 0  # bytes dropped from the front of buf

    def more(self) -> bool:
        """Read one more chunk; False at end of file."""
        if self.eof:
            return False
        data = self._fh.read(self._chunk)  # type: ignore[attr-defined]
        if not data:
            self.eof = True
            return False
        if self.pos > len(self.buf) // 2:
            self.consumed += self.pos
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += data
        return True

    def skip_ws(self) -> int | None:
        """Advance past whitespace; the next byte, or None at end of file."""
        while True:
            buf, n = self.buf, len(self.buf)
            while self.pos < n and buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < n:
                return buf[self.pos]
            if not self.more():
                return None

    def find(self, needle: bytes, start: int) -> int:
        """Absolute index of ``needle`` at or after ``start``, reading on; -1 at end of file."""
        while True:
            at = self.buf.find(needle, start)
            if at >= 0:
                return at
            start = max(start, len(self.buf) - len(needle) + 1)
            before = self.pos
            if not self.more():
                return -1
            start -= before - self.pos  # the front of the buffer may have been dropped

    def offset(self, index: int | None = None) -> int:
        """File offset of buffer index ``index`` (default: the read position)."""
        return self.consumed + (self.pos if index is None else index)


def iter_accuracy_log(path: Path, chunk_size: int = CHUNK_SIZE) -> Iterator[LogEntry]:
    """Yield every entry of the accuracy log at ``path``, in file order.

    Raises :class:`AccuracyLogError` (naming the byte offset) when the file is missing, is
    not a JSON array of entries, holds a ``data`` string that is not hex, or ends before the
    closing ``]``.
    """
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise AccuracyLogError(f"cannot read the accuracy log {path}: {exc}") from exc
    with fh:
        reader = _Buffer(fh, chunk_size)

        def fail(what: str, index: int | None = None) -> AccuracyLogError:
            return AccuracyLogError(f"{path}: {what} at byte {reader.offset(index)}")

        first = reader.skip_ws()
        if first != ord("["):
            raise fail("not a LoadGen accuracy log (expected '[')")
        reader.pos += 1
        expect_entry = True  # after '[' or ','
        count = 0
        while True:
            nxt = reader.skip_ws()
            if nxt is None:
                raise fail(f"log ends after {count} entries without its closing ']' (cut short?)")
            if nxt == ord("]") and (count == 0 or not expect_entry):
                reader.pos += 1
                break
            if nxt == ord(",") and not expect_entry:
                reader.pos += 1
                expect_entry = True
                continue
            if nxt != ord("{") or not expect_entry:
                raise fail(f"unexpected {chr(nxt)!r} after {count} entries")
            start = reader.pos
            end = reader.find(b"}", start)
            if end < 0:
                raise fail(f"entry {count} is cut short", start)
            start = reader.pos  # the buffer may have moved while reading on
            try:
                entry = _decode(reader.buf, start, end)
            except ValueError as exc:
                raise fail(f"entry {count}: {exc}", start) from None
            yield entry
            reader.pos = end + 1
            expect_entry = False
            count += 1
        if reader.skip_ws() is not None:
            raise fail("unexpected data after the closing ']'")


def _decode(buf: bytearray, start: int, end: int) -> LogEntry:
    """Decode the object ``buf[start:end + 1]``; ValueError says what is wrong."""
    key = buf.find(_DATA_KEY, start, end)
    if key < 0:
        raise ValueError('no "data" field')
    open_quote = buf.find(b'"', key + len(_DATA_KEY), end)
    close_quote = buf.find(b'"', open_quote + 1, end) if open_quote >= 0 else -1
    if close_quote < 0 or bytes(buf[key + len(_DATA_KEY) : open_quote]).strip() != b":":
        raise ValueError('malformed "data" field')
    numbers = {
        m.group(1): int(m.group(2))
        for part in (bytes(buf[start:key]), bytes(buf[close_quote + 1 : end]))
        for m in _NUMBER_FIELD.finditer(part)
    }
    if b"qsl_idx" not in numbers:
        raise ValueError('no "qsl_idx" field')
    try:
        data = binascii.unhexlify(buf[open_quote + 1 : close_quote])
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f'"data" is not hex ({exc})') from None
    return LogEntry(numbers.get(b"seq_id", -1), numbers[b"qsl_idx"], data)


def count_entries(path: Path) -> int:
    """The number of entries, by a full streaming pass (validates the file too)."""
    return sum(1 for _ in iter_accuracy_log(path))
