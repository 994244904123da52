"""The usage ledger in SQL (llmagg.common.sql): SQLite, the embedded default (one file), or PostgreSQL at
scale (a small pool); rows written in batches, one transaction per batch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from llmagg.common.sql import Database, PostgresDatabase, Sql, SqliteDatabase
from llmagg_ratelimit.adapters.usage_sql import (
    BATCH_STATEMENT,
    BATCHES_KEPT_S,
    POSTGRES,
    PRUNE_BATCHES_STATEMENT,
    SQLITE,
    Batch,
    Dialect,
    GroupCommit,
    add_column_statement,
    added_columns,
    create_statements,
    existing_columns_statement,
    insert_statement,
    recent_statement,
    record,
    row_values,
    select_statement,
    totals,
)
from llmagg_ratelimit.domain.ports import UsageQuery, UsageRecord, UsageTotal


class SqlUsage:
    def __init__(self, open_database: Callable[[], Database], dialect: Dialect) -> None:
        self._open = open_database  # opened on start, on a worker thread
        self.dialect = dialect
        self._sql: Sql | None = None
        self._commits = GroupCommit(self._insert)

    def open(self) -> None:
        """Open the database, create the table or add what an older one lacks (blocking: start() does it on a
        worker thread)."""
        database = self._open()
        with database.transaction() as cursor:
            for statement in create_statements(self.dialect):
                cursor.execute(statement)
            existing = {row[0] for row in cursor.execute(existing_columns_statement(self.dialect)).fetchall()}
            for name, definition in added_columns(self.dialect):
                if name not in existing:
                    cursor.execute(add_column_statement(self.dialect, name, definition))
        self._sql = Sql(database)

    async def start(self) -> None:
        await asyncio.to_thread(self.open)

    async def close(self) -> None:
        if self._sql is not None:
            await self._sql.close()
            self._sql = None

    async def ping(self) -> bool:
        return await self._sql.run(lambda cursor: cursor.execute("SELECT 1").fetchone()[0] == 1)

    async def write(self, rows: Sequence[UsageRecord], batch_id: str = "") -> None:
        await self._commits.write(rows, batch_id)

    async def _insert(self, batches: list[Batch]) -> None:
        """One transaction: each batch's rows, unless its id says they are stored already."""
        insert, mark = self._sql.text(insert_statement(self.dialect)), self._sql.text(BATCH_STATEMENT)
        prune = self._sql.text(PRUNE_BATCHES_STATEMENT)
        now = time.time()

        def store(cursor) -> None:
            values = []
            for rows, batch_id in batches:
                if batch_id:
                    cursor.execute(mark, (batch_id, now))
                    if cursor.rowcount == 0:
                        continue  # sent again: its rows are in
                values.extend(row_values(r) for r in rows)
            if values:
                cursor.executemany(insert, values)
            if any(batch_id for _, batch_id in batches):
                cursor.execute(prune, (now - BATCHES_KEPT_S,))

        await self._sql.run(store)

    async def query(self, query: UsageQuery) -> list[UsageTotal]:
        sql, params = select_statement(self.dialect, query)
        statement = self._sql.text(sql)
        rows = await self._sql.run(lambda cursor: cursor.execute(statement, params).fetchall())
        return totals(rows, query)

    async def recent(self, limit: int) -> list[UsageRecord]:
        statement = self._sql.text(recent_statement(limit))
        rows = await self._sql.run(lambda cursor: cursor.execute(statement).fetchall())
        return [record(row) for row in rows]


def sqlite_usage(path: Path | str) -> SqlUsage:
    return SqlUsage(lambda: SqliteDatabase(path, begin="BEGIN"), SQLITE)


def postgres_usage(dsn: str) -> SqlUsage:
    return SqlUsage(lambda: PostgresDatabase(dsn, max_connections=4, pool_name="ratelimit-usage"), POSTGRES)
