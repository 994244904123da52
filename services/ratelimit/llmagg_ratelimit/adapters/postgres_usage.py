"""The usage ledger in PostgreSQL (at scale): a connection pool, one transaction per batch of rows."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from llmagg_ratelimit.adapters.usage_sql import (
    POSTGRES,
    GroupCommit,
    create_statements,
    insert_statement,
    row_values,
    select_statement,
    totals,
)
from llmagg_ratelimit.domain.ports import UsageQuery, UsageRecord, UsageTotal


class PostgresUsage:
    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 4) -> None:
        self._dsn = dsn
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None
        self._commits = GroupCommit(self._insert)

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(self._dsn, min_size=self._sizes[0], max_size=self._sizes[1])
        async with self._pool.acquire() as connection:
            for statement in create_statements(POSTGRES):
                await connection.execute(statement)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def ping(self) -> bool:
        async with self._pool.acquire() as connection:
            return await connection.fetchval("SELECT 1") == 1

    async def write(self, rows: Sequence[UsageRecord]) -> None:
        await self._commits.write(rows)

    async def _insert(self, rows: Sequence[UsageRecord]) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.executemany(insert_statement(POSTGRES), [row_values(r) for r in rows])

    async def query(self, query: UsageQuery) -> list[UsageTotal]:
        sql, params = select_statement(POSTGRES, query)
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(sql, *params)
        return totals([tuple(row) for row in rows], query)
