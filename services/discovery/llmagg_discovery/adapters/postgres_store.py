"""The catalogue and its history in PostgreSQL (DISCOVERY_STORE=postgres): asyncpg, a small pool, JSONB."""

from __future__ import annotations

import urllib.parse

import asyncpg
import orjson

from llmagg_discovery.domain.ports import StoredCatalogue
from llmagg_discovery.domain.records import Change, ChangeKind, ModelRecord, ProviderRecord
from llmagg_discovery.domain.serialization import model_from_dict, model_to_dict, provider_from_dict, provider_to_dict

SCHEMA = """
CREATE TABLE IF NOT EXISTS catalogue_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1), revision BIGINT NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS catalogue_providers (id TEXT PRIMARY KEY, record JSONB NOT NULL);
CREATE TABLE IF NOT EXISTS catalogue_models (
    provider TEXT NOT NULL, model TEXT NOT NULL, record JSONB NOT NULL, PRIMARY KEY (provider, model));
CREATE TABLE IF NOT EXISTS catalogue_changes (
    id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, provider TEXT NOT NULL,
    model TEXT NOT NULL, source TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS catalogue_changes_at ON catalogue_changes (at);
"""


def _safe(dsn: str) -> str:
    """The DSN without its password (for logs)."""
    parts = urllib.parse.urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":****@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return dsn


class PostgresStore:
    def __init__(self, dsn: str, timeout_s: float = 10.0) -> None:
        self._dsn = dsn
        self._timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None

    def describe(self) -> str:
        return f"PostgreSQL at {_safe(self._dsn)}"

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=4, timeout=self._timeout_s)
        async with self._pool.acquire() as connection:
            await connection.execute(SCHEMA)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def load(self) -> StoredCatalogue:
        async with self._pool.acquire() as db:
            meta = await db.fetchrow("SELECT revision, updated_at FROM catalogue_meta WHERE id = 1")
            providers = [
                provider_from_dict(orjson.loads(r["record"]))
                for r in await db.fetch("SELECT record FROM catalogue_providers")
            ]
            models = [
                model_from_dict(orjson.loads(r["record"]))
                for r in await db.fetch("SELECT record FROM catalogue_models")
            ]
        return StoredCatalogue(meta["revision"] if meta else 0, meta["updated_at"] if meta else 0.0, models, providers)

    async def save(
        self,
        revision: int,
        updated_at: float,
        models: list[ModelRecord],
        providers: list[ProviderRecord],
        changes: list[Change],
    ) -> list[Change]:
        saved = []
        async with self._pool.acquire() as db, db.transaction():
            await db.execute(
                "INSERT INTO catalogue_meta (id, revision, updated_at) VALUES (1, $1, $2) "
                "ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, updated_at = excluded.updated_at",
                revision,
                updated_at,
            )
            await db.executemany(
                "INSERT INTO catalogue_providers (id, record) VALUES ($1, $2::jsonb) "
                "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                [(p.id, orjson.dumps(provider_to_dict(p)).decode()) for p in providers],
            )
            await db.executemany(
                "INSERT INTO catalogue_models (provider, model, record) VALUES ($1, $2, $3::jsonb) "
                "ON CONFLICT (provider, model) DO UPDATE SET record = excluded.record",
                [(m.key.provider, m.key.model, orjson.dumps(model_to_dict(m)).decode()) for m in models],
            )
            for change in changes:
                change_id = await db.fetchval(
                    "INSERT INTO catalogue_changes (at, kind, provider, model, source, detail) "
                    "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    change.at,
                    change.kind.value,
                    change.provider,
                    change.model,
                    change.source,
                    change.detail,
                )
                saved.append(
                    Change(
                        change.at, change.kind, change.provider, change.model, change.source, change.detail, change_id
                    )
                )
        return saved

    async def changes(self, since: float, provider: str | None, limit: int) -> list[Change]:
        query = "SELECT id, at, kind, provider, model, source, detail FROM catalogue_changes WHERE at >= $1"
        arguments: list[object] = [since]
        if provider:
            query += " AND provider = $2"
            arguments.append(provider)
        query += f" ORDER BY id DESC LIMIT ${len(arguments) + 1}"
        arguments.append(limit)
        async with self._pool.acquire() as db:
            rows = await db.fetch(query, *arguments)
        return [
            Change(
                id=r["id"],
                at=r["at"],
                kind=ChangeKind(r["kind"]),
                provider=r["provider"],
                model=r["model"],
                source=r["source"],
                detail=r["detail"],
            )
            for r in rows
        ]

    async def ping(self) -> bool:
        async with self._pool.acquire() as db:
            return await db.fetchval("SELECT 1") == 1
