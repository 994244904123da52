"""The suite's one SQL layer: SQLite (stdlib sqlite3, the embedded default) and PostgreSQL (psycopg, a
small connection pool), for the agent's threads, ratelimit's usage ledger and discovery's catalogue.

Statements are written once with `?` placeholders; `Sql.text()` turns them into the driver's. Work runs
in a worker thread, inside one transaction (committed when it returns, rolled back when it raises), so
the serving loop never blocks on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

SQLITE_SCHEME = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Cursor(Protocol):
    rowcount: int
    lastrowid: Any

    def execute(self, sql: str, parameters: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Database(Protocol):
    name: str  # "SQLite" or "PostgreSQL", for messages
    dialect: str  # "sqlite" or "postgres", for the statements that differ
    unavailable: tuple[type[Exception], ...]  # errors that mean the database cannot be used right now

    def transaction(self) -> contextlib.AbstractContextManager[Cursor]:
        """A cursor in a transaction: committed when the block ends, rolled back when it raises."""

    def describe(self) -> str: ...

    def close(self) -> None: ...


def sqlite_path(url: str) -> Path:
    """`sqlite:///relative.db` or `sqlite:////absolute/path.db` -> the file's path."""
    if not url.startswith(SQLITE_SCHEME) or len(url) == len(SQLITE_SCHEME):
        raise ValueError(f"a SQLite URL looks like sqlite:////absolute/path/threads.db, got {url!r}")
    return Path(url[len(SQLITE_SCHEME) :])


def without_password(url: str) -> str:
    """A database URL fit for a log line."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":****@")))
    return url


def open_errors() -> tuple[type[BaseException], ...]:
    """What opening a database raises when it cannot be opened or reached (a service stops at start)."""
    import psycopg
    import psycopg_pool

    return (OSError, sqlite3.Error, psycopg.Error, psycopg_pool.PoolTimeout)


class SqliteDatabase:
    """One file (or ":memory:"), one connection used by one worker thread at a time, WAL mode."""

    name = "SQLite"
    dialect = "sqlite"
    unavailable = (sqlite3.OperationalError,)

    def __init__(
        self,
        path: Path | str,
        busy_timeout_s: float = 10.0,
        begin: str = "BEGIN IMMEDIATE",
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are begun and ended explicitly below.
        self._connection = sqlite3.connect(
            str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute(f"PRAGMA synchronous={synchronous}")
        self._begin = begin  # IMMEDIATE: take the write lock now, no upgrade deadlock with another process
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"SQLite at {self.path}"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute(self._begin)
            try:
                yield cursor
            except BaseException:
                self._connection.rollback()
                raise
            else:
                self._connection.commit()
            finally:
                cursor.close()

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class PostgresDatabase:
    """A small psycopg connection pool; each transaction holds one connection."""

    name = "PostgreSQL"
    dialect = "postgres"

    def __init__(self, url: str, max_connections: int = 8, connect_timeout_s: float = 5.0, pool_name: str = "") -> None:
        import psycopg  # only a service that chose PostgreSQL needs the driver loaded
        import psycopg_pool

        self.unavailable = (psycopg.OperationalError, psycopg_pool.PoolTimeout)
        self._url = url
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            timeout=connect_timeout_s,
            kwargs={"connect_timeout": max(1, int(connect_timeout_s))},
            open=False,
            name=pool_name or None,
        )
        self._pool.open(wait=True, timeout=connect_timeout_s)

    def describe(self) -> str:
        return f"PostgreSQL at {without_password(self._url)}"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        # The pool's connection block commits when it ends and rolls back when it raises.
        with self._pool.connection() as connection, connection.cursor() as cursor:
            yield cursor

    def close(self) -> None:
        self._pool.close()


class Sql:
    """A Database used from the serving loop: statements in one spelling, work in a worker thread."""

    def __init__(self, database: Database) -> None:
        self.db = database

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def text(self, statement: str) -> str:
        """`statement` with `?` placeholders in the driver's spelling (psycopg: %s, literal % doubled)."""
        if self.db.dialect == "sqlite":
            return statement
        return statement.replace("%", "%%").replace("?", "%s")

    async def run(self, work: Callable[[Cursor], T]) -> T:
        """`work(cursor)` in one transaction, on a worker thread."""

        def transact() -> T:
            with self.db.transaction() as cursor:
                return work(cursor)

        return await asyncio.to_thread(transact)

    async def close(self) -> None:
        await asyncio.to_thread(self.db.close)
