"""SQLite for the thread store: one file, one connection used by one worker thread at a time, WAL mode."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

SCHEME = "sqlite:///"


def sqlite_path(url: str) -> Path:
    """`sqlite:///relative.db` or `sqlite:////absolute/path.db` -> the file's path."""
    if not url.startswith(SCHEME) or len(url) == len(SCHEME):
        raise ValueError(f"a SQLite URL looks like sqlite:////absolute/path/threads.db, got {url!r}")
    return Path(url[len(SCHEME) :])


class SqliteDatabase:
    name = "SQLite"
    placeholder = "?"
    unavailable = (sqlite3.OperationalError,)

    def __init__(self, path: Path, busy_timeout_s: float = 10.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Autocommit mode: transactions are begun and ended explicitly below.
        self._connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock with another process
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
