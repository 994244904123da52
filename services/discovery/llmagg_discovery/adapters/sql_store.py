"""The catalogue and its history in SQL (llmagg.common.sql): SQLite, the default (one file, WAL mode), or
PostgreSQL (DISCOVERY_STORE=postgres: a small pool, records as JSONB). One save is one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from llmagg.common.sql import Cursor, Database, PostgresDatabase, Sql, SqliteDatabase, without_password
from llmagg_discovery.domain.ports import StoredCatalogue
from llmagg_discovery.domain.records import Change, ChangeKind, ModelRecord, ProviderRecord
from llmagg_discovery.domain.serialization import model_from_dict, model_to_dict, provider_from_dict, provider_to_dict

# The same tables in each dialect's types: a record is JSON text in SQLite, JSONB in PostgreSQL.
_TYPES = {
    "sqlite": {"int": "INTEGER", "real": "REAL", "json": "TEXT", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgres": {"int": "BIGINT", "real": "DOUBLE PRECISION", "json": "JSONB", "serial": "BIGSERIAL PRIMARY KEY"},
}
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS catalogue_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1), revision {int} NOT NULL, updated_at {real} NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS catalogue_providers (id TEXT PRIMARY KEY, record {json} NOT NULL)",
    """CREATE TABLE IF NOT EXISTS catalogue_models (
    provider TEXT NOT NULL, model TEXT NOT NULL, record {json} NOT NULL, PRIMARY KEY (provider, model))""",
    """CREATE TABLE IF NOT EXISTS catalogue_changes (
    id {serial}, at {real} NOT NULL, kind TEXT NOT NULL, provider TEXT NOT NULL,
    model TEXT NOT NULL, source TEXT NOT NULL, detail TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS catalogue_changes_at ON catalogue_changes (at)",
)


def _record(value: Any) -> dict:
    """A stored record: JSON text (SQLite), or already decoded (psycopg reads JSONB as Python values)."""
    return value if isinstance(value, dict) else orjson.loads(value)


def _change(row) -> Change:
    return Change(
        id=row[0], at=row[1], kind=ChangeKind(row[2]), provider=row[3], model=row[4], source=row[5], detail=row[6]
    )


class SqlStore:
    def __init__(self, open_database: Callable[[], Database], describe: str) -> None:
        self._open = open_database  # opened by open(), on a worker thread
        self._describe = describe
        self._sql: Sql | None = None

    def describe(self) -> str:
        return self._describe

    async def open(self) -> None:
        sql = Sql(await asyncio.to_thread(self._open))
        types = _TYPES[sql.dialect]

        def create(cursor: Cursor) -> None:
            for statement in _SCHEMA:
                cursor.execute(statement.format(**types))

        await sql.run(create)
        self._sql = sql

    async def close(self) -> None:
        if self._sql is not None:
            await self._sql.close()
            self._sql = None

    async def load(self) -> StoredCatalogue:
        def read(db: Cursor) -> StoredCatalogue:
            meta = db.execute("SELECT revision, updated_at FROM catalogue_meta WHERE id = 1").fetchone()
            rows = db.execute("SELECT record FROM catalogue_providers").fetchall()
            providers = [provider_from_dict(_record(r[0])) for r in rows]
            models = [
                model_from_dict(_record(r[0])) for r in db.execute("SELECT record FROM catalogue_models").fetchall()
            ]
            revision, updated_at = meta if meta else (0, 0.0)
            return StoredCatalogue(revision, updated_at, models, providers)

        return await self._sql.run(read)

    async def save(
        self,
        revision: int,
        updated_at: float,
        models: list[ModelRecord],
        providers: list[ProviderRecord],
        changes: list[Change],
    ) -> list[Change]:
        text = self._sql.text
        json = "?::jsonb" if self._sql.dialect == "postgres" else "?"

        def write(db: Cursor) -> list[Change]:
            db.execute(
                text(
                    "INSERT INTO catalogue_meta (id, revision, updated_at) VALUES (1, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, updated_at = excluded.updated_at"
                ),
                (revision, updated_at),
            )
            db.executemany(
                text(
                    f"INSERT INTO catalogue_providers (id, record) VALUES (?, {json}) "
                    "ON CONFLICT (id) DO UPDATE SET record = excluded.record"
                ),
                [(p.id, orjson.dumps(provider_to_dict(p)).decode()) for p in providers],
            )
            db.executemany(
                text(
                    f"INSERT INTO catalogue_models (provider, model, record) VALUES (?, ?, {json}) "
                    "ON CONFLICT (provider, model) DO UPDATE SET record = excluded.record"
                ),
                [(m.key.provider, m.key.model, orjson.dumps(model_to_dict(m)).decode()) for m in models],
            )
            saved = []
            for change in changes:
                db.execute(
                    text(
                        "INSERT INTO catalogue_changes (at, kind, provider, model, source, detail) "
                        "VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
                    ),
                    (change.at, change.kind.value, change.provider, change.model, change.source, change.detail),
                )
                (change_id,) = db.fetchone()
                saved.append(
                    Change(
                        change.at, change.kind, change.provider, change.model, change.source, change.detail, change_id
                    )
                )
            return saved

        return await self._sql.run(write)

    async def changes(self, since: float, provider: str | None, limit: int) -> list[Change]:
        query = "SELECT id, at, kind, provider, model, source, detail FROM catalogue_changes WHERE at >= ?"
        arguments: list[object] = [since]
        if provider:
            query += " AND provider = ?"
            arguments.append(provider)
        query += " ORDER BY id DESC LIMIT ?"
        arguments.append(limit)
        statement = self._sql.text(query)
        return await self._sql.run(lambda db: [_change(row) for row in db.execute(statement, arguments).fetchall()])

    async def ping(self) -> bool:
        return await self._sql.run(lambda db: db.execute("SELECT 1").fetchone()[0] == 1)


def sqlite_store(path: Path) -> SqlStore:
    return SqlStore(lambda: SqliteDatabase(path, busy_timeout_s=5.0, synchronous="FULL"), f"SQLite at {path}")


def postgres_store(dsn: str, timeout_s: float = 10.0) -> SqlStore:
    def database() -> Database:
        return PostgresDatabase(dsn, max_connections=4, connect_timeout_s=timeout_s, pool_name="discovery-catalogue")

    return SqlStore(database, f"PostgreSQL at {without_password(dsn)}")
