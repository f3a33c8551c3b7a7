"""The history store: every session's records, in SQLite (a file) or PostgreSQL (a server).

``open_store(location)`` opens (and creates or migrates) a store: a path is a SQLite file,
``postgresql://…`` (or ``postgres://…``) a PostgreSQL database. The schema is versioned
(:data:`MIGRATIONS`, one list of statements per version, applied in order under a lock);
a store written by a newer pytest-mlperf is refused, never downgraded.

Concurrent writers never lose a record: a session and its records go in with one
transaction (SQLite: ``BEGIN IMMEDIATE`` in WAL mode with a long busy timeout, so writers
queue; PostgreSQL: a transaction per session), and adding a session whose ``run_id`` is
already there adds nothing (an import can be repeated). A file that is not a SQLite
database, a database of something else, or a server that cannot be reached is a
:class:`HistoryError` naming the store.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_mlperf.errors import MlperfError
from pytest_mlperf.redact import redact

#: the schema version this code writes; stores at a lower version are migrated on open
SCHEMA_VERSION = 2
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: seconds a SQLite writer waits for another writer's transaction
SQLITE_BUSY_TIMEOUT_S = 120.0
_SQLITE_ID = "INTEGER PRIMARY KEY AUTOINCREMENT"
_PG_ID = "BIGSERIAL PRIMARY KEY"
#: version -> statements (``{id}``: the dialect's auto-increment key)
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE mlperf_history_sessions ("
        " run_id TEXT PRIMARY KEY, ref TEXT NOT NULL, commit_sha TEXT, started TEXT,"
        " finished TEXT, good INTEGER NOT NULL, interrupted INTEGER NOT NULL,"
        " backend TEXT, system TEXT, plugin_version TEXT, source TEXT NOT NULL,"
        " added_at TEXT NOT NULL)",
        "CREATE TABLE mlperf_history_records ("
        " id {id}, run_id TEXT NOT NULL REFERENCES mlperf_history_sessions(run_id),"
        " item_key TEXT NOT NULL, ref TEXT NOT NULL, fingerprint_id TEXT NOT NULL,"
        " fingerprint TEXT NOT NULL, value DOUBLE PRECISION, unit TEXT, compared TEXT,"
        " higher_is_better INTEGER NOT NULL, good INTEGER NOT NULL, outcome TEXT NOT NULL,"
        " validity TEXT, recorded_at TEXT NOT NULL, commit_sha TEXT, samples TEXT NOT NULL,"
        " record TEXT NOT NULL)",
    ),
    2: (
        "CREATE INDEX mlperf_history_lookup ON mlperf_history_records"
        " (item_key, fingerprint_id, ref, good, recorded_at, id)",
        "CREATE INDEX mlperf_history_by_run ON mlperf_history_records (run_id)",
    ),
}
_META = "mlperf_history_meta"
_RECORD_COLUMNS = (
    "id, run_id, item_key, ref, fingerprint_id, fingerprint, value, unit, compared,"
    " higher_is_better, good, outcome, validity, recorded_at, commit_sha, samples, record"
)
_SESSION_COLUMNS = (
    "run_id, ref, commit_sha, started, finished, good, interrupted, backend, system,"
    " plugin_version, source, added_at"
)


class HistoryError(MlperfError):
    """The history store cannot be opened, read or written; the message names it."""


@dataclass(frozen=True)
class HistoryRecord:
    """One item's result in the history (a performance item's judged figure)."""

    run_id: str
    #: ``benchmark/scenario/mode``, e.g. ``bert-99/Offline/performance``
    item_key: str
    #: the branch (or other ref) the session ran on
    ref: str
    fingerprint_id: str
    fingerprint: Mapping[str, Any]
    #: the figure judged: the metric, or the Server p99 latency at a pinned target
    value: float | None
    unit: str | None
    compared: str | None
    higher_is_better: bool
    #: from a session with no failure and no interruption, with a value: judged against
    good: bool
    outcome: str
    validity: str | None
    #: ISO 8601 UTC; newest first means by this, then by insertion
    recorded_at: str
    commit: str | None = None
    #: the values of the item's repeats (one per LoadGen run); empty without repeats
    samples: tuple[float, ...] = ()
    #: the full result record
    record: Mapping[str, Any] = field(default_factory=dict)
    #: the store's row id (None before it is added)
    id: int | None = None


@dataclass(frozen=True)
class HistorySession:
    """One pytest session (or an imported ``results.json``)."""

    run_id: str
    ref: str
    good: bool
    interrupted: bool
    source: str
    added_at: str
    commit: str | None = None
    started: str | None = None
    finished: str | None = None
    backend: str | None = None
    system: str | None = None
    plugin_version: str | None = None


class _Cursor(Protocol):
    rowcount: int

    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


def is_postgres(location: str) -> bool:
    """``location`` names a PostgreSQL database (a ``postgresql://`` URL)."""
    return location.startswith(POSTGRES_SCHEMES)


class HistoryStore:
    """A history store; use :func:`open_store`. Every method raises :class:`HistoryError`."""

    def __init__(self, location: str, conn: Any, dialect: str) -> None:
        #: where the store is, secrets masked (for messages and reports)
        self.location = redact(location)
        self._conn = conn
        self.dialect = dialect
        self._param = "?" if dialect == "sqlite" else "%s"

    # -- plumbing ---------------------------------------------------------------------------
    def _sql(self, text: str) -> str:
        return text.replace("?", self._param) if self._param != "?" else text

    def _execute(self, text: str, params: Sequence[Any] = ()) -> _Cursor:
        cursor: _Cursor = self._conn.execute(self._sql(text), tuple(params))
        return cursor

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except HistoryError:
            raise
        except sqlite3.Error as exc:
            raise HistoryError(
                f"history store {self.location}: cannot {doing}: {exc} (a damaged file, or "
                "not a pytest-mlperf history database)"
            ) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise HistoryError(
                    f"history store {self.location}: cannot {doing}: {str(exc).strip()}"
                ) from exc
            raise

    @contextmanager
    def _transaction(self, lock: bool = False) -> Iterator[None]:
        """One write transaction; SQLite takes the write lock at once (writers queue)."""
        if self.dialect == "sqlite":
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        else:
            with self._conn.transaction():
                if lock:  # schema changes: one process at a time
                    self._conn.execute("SELECT pg_advisory_xact_lock(7123581321)")
                yield

    # -- schema -----------------------------------------------------------------------------
    def _tables(self) -> set[str]:
        if self.dialect == "sqlite":
            rows = self._execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        else:
            rows = self._execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            ).fetchall()
        return {str(r[0]) for r in rows}

    def schema_version(self) -> int:
        """The store's schema version (0: empty)."""
        with self._errors("read its schema version"):
            if _META not in self._tables():
                return 0
            row = self._execute(
                f"SELECT value FROM {_META} WHERE key = 'schema_version'"
            ).fetchone()
            return int(row[0]) if row else 0

    def migrate(self) -> int:
        """Create or upgrade the schema to :data:`SCHEMA_VERSION`; returns the version found."""
        with self._errors("create or migrate its schema"), self._transaction(lock=True):
            tables = self._tables()
            found = 0
            if _META in tables:
                row = self._execute(
                    f"SELECT value FROM {_META} WHERE key = 'schema_version'"
                ).fetchone()
                found = int(row[0]) if row else 0
            elif tables - {"sqlite_sequence"}:
                raise HistoryError(
                    f"history store {self.location} is a database of something else (tables "
                    f"{', '.join(sorted(tables))}, no {_META}): not a pytest-mlperf history"
                )
            if found > SCHEMA_VERSION:
                raise HistoryError(
                    f"history store {self.location} has schema version {found}; this "
                    f"pytest-mlperf reads up to {SCHEMA_VERSION} (upgrade pytest-mlperf)"
                )
            if found == 0:
                self._execute(f"CREATE TABLE {_META} (key TEXT PRIMARY KEY, value TEXT)")
                self._execute(f"INSERT INTO {_META} VALUES ('schema_version', '0')")
            ident = _SQLITE_ID if self.dialect == "sqlite" else _PG_ID
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    self._execute(statement.replace("{id}", ident))
                self._execute(
                    f"UPDATE {_META} SET value = ? WHERE key = 'schema_version'", (str(version),)
                )
            return found

    # -- writing ----------------------------------------------------------------------------
    def add_session(self, session: HistorySession, records: Sequence[HistoryRecord]) -> int:
        """Add a session and its records in one transaction; the number of records added
        (0 when a session with that ``run_id`` is already in the store)."""
        with self._errors(f"add session {session.run_id}"), self._transaction():
            added = self._execute(
                f"INSERT INTO mlperf_history_sessions ({_SESSION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING",
                (
                    session.run_id,
                    session.ref,
                    session.commit,
                    session.started,
                    session.finished,
                    int(session.good),
                    int(session.interrupted),
                    session.backend,
                    session.system,
                    session.plugin_version,
                    session.source,
                    session.added_at,
                ),
            )
            if added.rowcount == 0:  # already there (a concurrent writer, or an import again)
                return 0
            rows = [_record_row(r) for r in records]
            text = self._sql(
                f"INSERT INTO mlperf_history_records ({_RECORD_COLUMNS.split(', ', 1)[1]}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )
            if self.dialect == "sqlite":
                self._conn.executemany(text, rows)
            else:
                with self._conn.cursor() as cur:
                    cur.executemany(text, rows)
            return len(rows)

    # -- reading ----------------------------------------------------------------------------
    def records(
        self,
        item_key: str,
        fingerprint_id: str | None,
        ref: str | None,
        *,
        good_only: bool = True,
        limit: int | None = None,
    ) -> list[HistoryRecord]:
        """The records of one item (and fingerprint, and ref, when given), newest first."""
        where, params = ["item_key = ?"], [item_key]
        if fingerprint_id is not None:
            where.append("fingerprint_id = ?")
            params.append(fingerprint_id)
        if ref is not None:
            where.append("ref = ?")
            params.append(ref)
        if good_only:
            where.append("good = 1")
        return self._records(" AND ".join(where), params, limit)

    def other_fingerprints(
        self, item_key: str, ref: str | None, fingerprint_id: str, limit: int = 1
    ) -> list[HistoryRecord]:
        """The newest good records of the item (and ref) with another fingerprint."""
        where, params = (
            ["item_key = ?", "fingerprint_id <> ?", "good = 1"],
            [
                item_key,
                fingerprint_id,
            ],
        )
        if ref is not None:
            where.append("ref = ?")
            params.append(ref)
        return self._records(" AND ".join(where), params, limit)

    def session_records(self, run_id: str) -> list[HistoryRecord]:
        """The records of one session, in the order they were added."""
        found = self._records("run_id = ?", [run_id], None)
        return sorted(found, key=lambda r: r.id or 0)

    def all_records(self) -> list[HistoryRecord]:
        """Every record, newest first."""
        return self._records("1 = 1", [], None)

    def _records(self, where: str, params: Sequence[Any], limit: int | None) -> list[HistoryRecord]:
        text = (
            f"SELECT {_RECORD_COLUMNS} FROM mlperf_history_records WHERE {where} "
            "ORDER BY recorded_at DESC, id DESC"
        )
        if limit is not None:
            text += f" LIMIT {int(limit)}"
        with self._errors("read its records"):
            return [_record_of(row) for row in self._execute(text, params).fetchall()]

    def sessions(self, ref: str | None = None, limit: int | None = None) -> list[HistorySession]:
        """The sessions (of one ref, when given), newest first."""
        text = f"SELECT {_SESSION_COLUMNS} FROM mlperf_history_sessions"
        params: list[Any] = []
        if ref is not None:
            text += " WHERE ref = ?"
            params.append(ref)
        text += " ORDER BY COALESCE(finished, started, added_at) DESC, added_at DESC"
        if limit is not None:
            text += f" LIMIT {int(limit)}"
        with self._errors("read its sessions"):
            return [_session_of(row) for row in self._execute(text, params).fetchall()]

    def items(self) -> list[tuple[str, str, str, int]]:
        """(item_key, fingerprint_id, ref, good records) of every series in the store."""
        with self._errors("read its items"):
            rows = self._execute(
                "SELECT item_key, fingerprint_id, ref, SUM(good) FROM mlperf_history_records "
                "GROUP BY item_key, fingerprint_id, ref ORDER BY item_key, ref, fingerprint_id"
            ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3] or 0)) for r in rows]

    def count(self) -> int:
        """How many records the store holds."""
        with self._errors("count its records"):
            row = self._execute("SELECT COUNT(*) FROM mlperf_history_records").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the connection (errors on close are ignored: nothing is pending)."""
        with suppress(Exception):  # closing a broken connection has nothing to report
            self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _record_row(r: HistoryRecord) -> tuple[Any, ...]:
    return (
        r.run_id,
        r.item_key,
        r.ref,
        r.fingerprint_id,
        json.dumps(dict(r.fingerprint), sort_keys=True, default=str),
        r.value,
        r.unit,
        r.compared,
        int(r.higher_is_better),
        int(r.good),
        r.outcome,
        r.validity,
        r.recorded_at,
        r.commit,
        json.dumps(list(r.samples)),
        json.dumps(dict(r.record), default=str),
    )


def _record_of(row: Sequence[Any]) -> HistoryRecord:
    return HistoryRecord(
        id=int(row[0]),
        run_id=str(row[1]),
        item_key=str(row[2]),
        ref=str(row[3]),
        fingerprint_id=str(row[4]),
        fingerprint=json.loads(row[5]),
        value=None if row[6] is None else float(row[6]),
        unit=row[7],
        compared=row[8],
        higher_is_better=bool(row[9]),
        good=bool(row[10]),
        outcome=str(row[11]),
        validity=row[12],
        recorded_at=str(row[13]),
        commit=row[14],
        samples=tuple(float(v) for v in json.loads(row[15])),
        record=json.loads(row[16]),
    )


def _session_of(row: Sequence[Any]) -> HistorySession:
    return HistorySession(
        run_id=str(row[0]),
        ref=str(row[1]),
        commit=row[2],
        started=row[3],
        finished=row[4],
        good=bool(row[5]),
        interrupted=bool(row[6]),
        backend=row[7],
        system=row[8],
        plugin_version=row[9],
        source=str(row[10]),
        added_at=str(row[11]),
    )


def _open_sqlite(path: Path) -> HistoryStore:
    shown = str(path)
    if path.is_dir():
        raise HistoryError(f"history store {shown} is a directory, not a SQLite file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as exc:
        raise HistoryError(f"history store {shown}: cannot open: {exc}") from exc
    store = HistoryStore(shown, conn, "sqlite")
    with store._errors("open it"):
        conn.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    return store


def _open_postgres(url: str) -> HistoryStore:
    shown = redact(url)
    try:
        import psycopg
    except ImportError as exc:
        raise HistoryError(
            f"history store {shown}: PostgreSQL needs psycopg 3 "
            "(pip install 'pytest-mlperf[postgres]')"
        ) from exc
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise HistoryError(f"history store {shown}: cannot connect: {str(exc).strip()}") from exc
    return HistoryStore(url, conn, "postgres")


def open_store(location: str | Path, *, create: bool = True) -> HistoryStore:
    """Open the store at ``location`` (a SQLite path, or a ``postgresql://`` URL) with its
    schema at :data:`SCHEMA_VERSION` (``create=False``: a missing SQLite file is an error)."""
    text = str(location)
    if is_postgres(text):
        store = _open_postgres(text)
    else:
        path = Path(text).expanduser()
        if not create and not path.is_file():
            raise HistoryError(f"history store {path} does not exist")
        store = _open_sqlite(path)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
