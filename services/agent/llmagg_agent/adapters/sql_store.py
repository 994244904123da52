"""The thread store in SQL: the same statements on SQLite and PostgreSQL (llmagg.common.sql).

Tables: `agent_threads` (one row per thread: status, the state as JSON, counters, the version every save
checks), `agent_messages` (the conversation, one row per message, only ever appended) and
`agent_leases` (which run holds a thread, until when). Each save is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.sql import Cursor, Database, Sql
from llmagg_agent.domain.threads import AgentStatus, StaleThread, Thread, ThreadSummary

T = TypeVar("T")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS agent_threads (
        thread_id TEXT PRIMARY KEY,
        client_id TEXT,
        status TEXT NOT NULL,
        state TEXT NOT NULL,
        message_count INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        version INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS agent_threads_by_creation ON agent_threads (created_at, thread_id)",
    """CREATE TABLE IF NOT EXISTS agent_messages (
        thread_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (thread_id, position)
    )""",
    """CREATE TABLE IF NOT EXISTS agent_leases (
        thread_id TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
)
_INSERT_THREAD = """INSERT INTO agent_threads
    (thread_id, client_id, status, state, message_count, created_at, updated_at, version)
    VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (thread_id) DO NOTHING"""
_UPDATE_THREAD = """UPDATE agent_threads SET status = ?, state = ?, message_count = ?, updated_at = ?,
    version = version + 1 WHERE thread_id = ? AND version = ?"""
_INSERT_MESSAGE = "INSERT INTO agent_messages (thread_id, position, message) VALUES (?, ?, ?)"
_SELECT_THREAD = """SELECT client_id, status, state, created_at, updated_at, version
    FROM agent_threads WHERE thread_id = ?"""
_SELECT_MESSAGES = "SELECT message FROM agent_messages WHERE thread_id = ? ORDER BY position"
_SUMMARY = "SELECT thread_id, status, message_count, created_at, updated_at FROM agent_threads"
_CLAIM = """INSERT INTO agent_leases (thread_id, holder, expires_at) VALUES (?, ?, ?)
    ON CONFLICT (thread_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE agent_leases.expires_at < ?"""
_RELEASE = "DELETE FROM agent_leases WHERE thread_id = ? AND holder = ?"
_HELD_BY = "SELECT 1 FROM agent_leases WHERE thread_id = ? AND holder = ?"


class SqlThreadStore:
    """ThreadStore on a Database; blocking calls run in a worker thread."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._store = Sql(database)
        self._sql = self._store.text

    async def _run(self, work: Callable[[Cursor], T]) -> T:
        try:
            return await self._store.run(work)
        except self._db.unavailable as problem:
            raise ServiceError(
                ErrorKind.UNAVAILABLE,
                f"The agent's thread store ({self._db.name}) is unavailable; retry shortly.",
                code="thread_store_unavailable",
                retry_after_s=1,
            ) from problem

    async def setup(self) -> None:
        def create(cursor: Cursor) -> None:
            for statement in SCHEMA:
                cursor.execute(statement)

        await self._run(create)

    async def load(self, thread_id: str) -> Thread | None:
        def read(cursor: Cursor) -> Thread | None:
            cursor.execute(self._sql(_SELECT_THREAD), (thread_id,))
            row = cursor.fetchone()
            if row is None:
                return None
            client_id, status, state, created_at, updated_at, version = row
            cursor.execute(self._sql(_SELECT_MESSAGES), (thread_id,))
            messages = [orjson.loads(message) for (message,) in cursor.fetchall()]
            thread = Thread(
                thread_id,
                client_id,
                AgentStatus(status),
                messages,
                created_at=created_at,
                updated_at=updated_at,
                version=version,
                stored_messages=len(messages),
            )
            thread.restore(orjson.loads(state))
            return thread

        return await self._run(read)

    async def save(self, thread: Thread) -> None:
        new = thread.messages[thread.stored_messages :]
        state = orjson.dumps(thread.state()).decode()

        def write(cursor: Cursor) -> None:
            if thread.version == 0:
                cursor.execute(
                    self._sql(_INSERT_THREAD),
                    (
                        thread.thread_id,
                        thread.client_id,
                        thread.status.value,
                        state,
                        len(thread.messages),
                        thread.created_at,
                        thread.updated_at,
                    ),
                )
            else:
                cursor.execute(
                    self._sql(_UPDATE_THREAD),
                    (
                        thread.status.value,
                        state,
                        len(thread.messages),
                        thread.updated_at,
                        thread.thread_id,
                        thread.version,
                    ),
                )
            if cursor.rowcount != 1:
                raise StaleThread(thread.thread_id)
            if new:
                cursor.executemany(
                    self._sql(_INSERT_MESSAGE),
                    [
                        (thread.thread_id, thread.stored_messages + offset, orjson.dumps(message).decode())
                        for offset, message in enumerate(new)
                    ],
                )

        await self._run(write)
        thread.version += 1
        thread.stored_messages = len(thread.messages)

    async def list(self, limit: int, before: tuple[float, str] | None, client_id: str | None) -> list[ThreadSummary]:
        conditions: list[str] = []
        parameters: list[Any] = []
        if client_id:
            conditions.append("(client_id IS NULL OR client_id = ?)")
            parameters.append(client_id)
        if before is not None:
            conditions.append("(created_at < ? OR (created_at = ? AND thread_id < ?))")
            parameters += [before[0], before[0], before[1]]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        statement = f"{_SUMMARY}{where} ORDER BY created_at DESC, thread_id DESC LIMIT ?"

        def read(cursor: Cursor) -> list[ThreadSummary]:
            cursor.execute(self._sql(statement), (*parameters, limit))
            return [
                ThreadSummary(thread_id, AgentStatus(status), count, created, updated)
                for thread_id, status, count, created, updated in cursor.fetchall()
            ]

        return await self._run(read)

    async def delete(self, thread_id: str, holder: str) -> bool:
        def remove(cursor: Cursor) -> bool:
            cursor.execute(self._sql(_HELD_BY), (thread_id, holder))
            if cursor.fetchone() is None:
                raise StaleThread(thread_id)
            cursor.execute(self._sql("DELETE FROM agent_messages WHERE thread_id = ?"), (thread_id,))
            cursor.execute(self._sql("DELETE FROM agent_threads WHERE thread_id = ?"), (thread_id,))
            return cursor.rowcount == 1

        return await self._run(remove)

    async def claim(self, thread_id: str, holder: str, until: float, now: float) -> bool:
        def take(cursor: Cursor) -> bool:
            cursor.execute(self._sql(_CLAIM), (thread_id, holder, until, now))
            return cursor.rowcount == 1

        return await self._run(take)

    async def release(self, thread_id: str, holder: str) -> None:
        await self._run(lambda cursor: cursor.execute(self._sql(_RELEASE), (thread_id, holder)))

    async def ping(self) -> None:
        await self._run(lambda cursor: cursor.execute("SELECT 1"))

    async def close(self) -> None:
        await self._store.close()
