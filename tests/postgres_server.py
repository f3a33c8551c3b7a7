"""A throwaway PostgreSQL server for the history store's tests (Debian's postgresql-15).

``MLPERF_TEST_POSTGRES`` (a ``postgresql://`` URL, as ``.ci/run`` exports) names a server
to use; otherwise one is started here with ``initdb`` in a temporary directory, listening
on a unix socket only, and stopped at the end of the session. Without the binaries (or
psycopg) the tests that need it are skipped, and in CI (``CI=true``) they fail instead:
a CI run must not pass without having tested the PostgreSQL path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/local/bin")


def _binary(name: str) -> str | None:
    for folder in _BIN_DIRS:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def missing_postgres(why: str) -> None:
    """Skip (locally) or fail (``CI=true``) a test that needs PostgreSQL."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL needed in CI: {why}")
    pytest.skip(f"PostgreSQL not available: {why}")


class PostgresServer:
    """A server in ``root`` (data dir and socket dir): as the current user, or as
    ``postgres`` when that is root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.socket = root / "sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """initdb, start ``postgres`` on the socket only; the URL of database ``postgres``."""
        initdb, postgres = _binary("initdb"), _binary("postgres")
        if initdb is None or postgres is None:
            missing_postgres("initdb/postgres not found (apt-get install postgresql)")
        assert initdb is not None and postgres is not None
        as_user = self._as_user()
        self.socket.mkdir(parents=True)
        if as_user:  # PostgreSQL refuses to run as root: the data belongs to its own user
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket, "postgres", "postgres")
        subprocess.run(
            [*as_user, initdb, "-D", str(self.data), "-U", "mlperf", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        log = (self.root / "postgres.log").open("wb")
        self.proc = subprocess.Popen(
            [
                *as_user,
                postgres,
                "-D",
                str(self.data),
                "-k",
                str(self.socket),
                "-c",
                "listen_addresses=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"postgresql://mlperf@/postgres?host={self.socket}"
        self._wait(url)
        return url

    @staticmethod
    def _as_user() -> list[str]:
        """As root: run the server as the ``postgres`` user (``runuser``); else as oneself."""
        if os.geteuid() != 0:
            return []
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            runuser = None
        if runuser is None:
            missing_postgres("running as root without runuser and a postgres user")
        assert runuser is not None
        return [runuser, "-u", "postgres", "--"]

    def _wait(self, url: str) -> None:
        import time

        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                assert self.proc is not None
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.root / "postgres.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"PostgreSQL did not start:\n{log}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (SIGTERM: smart shutdown) and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def new_database(server_url: str) -> str:
    """A fresh, empty database on the server; its URL."""
    import psycopg

    name = "mlperf_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    head, sep, query = server_url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}{sep}{query}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's ``postgres`` database (skips/fails when missing)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing_postgres("psycopg is not installed (pip install 'pytest-mlperf[postgres]')")
    given = os.environ.get("MLPERF_TEST_POSTGRES")
    if given:
        yield given
        return
    root = Path(tempfile.mkdtemp(prefix="mlperf-pg-"))
    server = PostgresServer(root)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh database on the session's server, for one test."""
    return new_database(postgres_server)
