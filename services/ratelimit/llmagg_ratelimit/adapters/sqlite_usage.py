"""The usage ledger in SQLite (the embedded default): one file, written in batches on a worker thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from llmagg_ratelimit.adapters.usage_sql import (
    SQLITE,
    GroupCommit,
    create_statements,
    insert_statement,
    row_values,
    select_statement,
    totals,
)
from llmagg_ratelimit.domain.ports import UsageQuery, UsageRecord, UsageTotal


class SqliteUsage:
    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._commits = GroupCommit(lambda rows: asyncio.to_thread(self._write, rows))

    def _open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in create_statements(SQLITE):
            db.execute(statement)
        self._db = db

    async def start(self) -> None:
        await asyncio.to_thread(self._open)

    async def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()
                self._db = None

    def _write(self, rows: Sequence[UsageRecord]) -> None:
        with self._lock:
            assert self._db is not None
            # One transaction per batch: all its rows are written, or none.
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(insert_statement(SQLITE), [row_values(r) for r in rows])

    async def write(self, rows: Sequence[UsageRecord]) -> None:
        await self._commits.write(rows)

    def _query(self, query: UsageQuery) -> list[UsageTotal]:
        sql, params = select_statement(SQLITE, query)
        with self._lock:
            assert self._db is not None
            rows = self._db.execute(sql, params).fetchall()
        return totals(rows, query)

    async def query(self, query: UsageQuery) -> list[UsageTotal]:
        return await asyncio.to_thread(self._query, query)
