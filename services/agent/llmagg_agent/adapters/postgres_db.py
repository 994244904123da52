"""PostgreSQL for the thread store: a small psycopg connection pool."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg_pool

SCHEMES = ("postgresql://", "postgres://")


class PostgresDatabase:
    name = "PostgreSQL"
    placeholder = "%s"
    unavailable = (psycopg.OperationalError, psycopg_pool.PoolTimeout)

    def __init__(self, url: str, max_connections: int = 8, connect_timeout_s: float = 5.0) -> None:
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            timeout=connect_timeout_s,
            kwargs={"connect_timeout": max(1, int(connect_timeout_s))},
            open=False,
            name="agent-threads",
        )
        self._pool.open(wait=True, timeout=connect_timeout_s)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor]:
        # The pool's connection block commits when it ends and rolls back when it raises.
        with self._pool.connection() as connection, connection.cursor() as cursor:
            yield cursor

    def close(self) -> None:
        self._pool.close()
