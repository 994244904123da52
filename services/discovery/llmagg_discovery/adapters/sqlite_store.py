"""The catalogue and its history in SQLite (the default): stdlib sqlite3 on a worker thread, WAL mode."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import orjson

from llmagg_discovery.domain.ports import StoredCatalogue
from llmagg_discovery.domain.records import Change, ChangeKind, ModelRecord, ProviderRecord
from llmagg_discovery.domain.serialization import model_from_dict, model_to_dict, provider_from_dict, provider_to_dict

SCHEMA = """
CREATE TABLE IF NOT EXISTS catalogue_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS catalogue_providers (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS catalogue_models (
    provider TEXT NOT NULL, model TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (provider, model));
CREATE TABLE IF NOT EXISTS catalogue_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL, provider TEXT NOT NULL,
    model TEXT NOT NULL, source TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS catalogue_changes_at ON catalogue_changes (at);
"""


def _change(row) -> Change:
    return Change(
        id=row[0], at=row[1], kind=ChangeKind(row[2]), provider=row[3], model=row[4], source=row[5], detail=row[6]
    )


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"SQLite at {self._path}"

    async def _run(self, work, *args):
        def locked():
            with self._lock:
                return work(*args)

        return await asyncio.to_thread(locked)

    def _open(self) -> None:
        if str(self._path) != ":memory:":
            self._path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(self._path), check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA busy_timeout=5000")
        connection.executescript(SCHEMA)
        self._connection = connection

    async def open(self) -> None:
        await self._run(self._open)

    async def close(self) -> None:
        if self._connection is not None:
            await self._run(self._connection.close)
            self._connection = None

    def _load(self) -> StoredCatalogue:
        db = self._connection
        meta = db.execute("SELECT revision, updated_at FROM catalogue_meta WHERE id = 1").fetchone()
        providers = [
            provider_from_dict(orjson.loads(r[0])) for r in db.execute("SELECT record FROM catalogue_providers")
        ]
        models = [model_from_dict(orjson.loads(r[0])) for r in db.execute("SELECT record FROM catalogue_models")]
        revision, updated_at = meta if meta else (0, 0.0)
        return StoredCatalogue(revision, updated_at, models, providers)

    async def load(self) -> StoredCatalogue:
        return await self._run(self._load)

    def _save(self, revision, updated_at, models, providers, changes) -> list[Change]:
        db = self._connection
        saved = []
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO catalogue_meta (id, revision, updated_at) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, updated_at = excluded.updated_at",
                (revision, updated_at),
            )
            db.executemany(
                "INSERT INTO catalogue_providers (id, record) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                [(p.id, orjson.dumps(provider_to_dict(p)).decode()) for p in providers],
            )
            db.executemany(
                "INSERT INTO catalogue_models (provider, model, record) VALUES (?, ?, ?) "
                "ON CONFLICT (provider, model) DO UPDATE SET record = excluded.record",
                [(m.key.provider, m.key.model, orjson.dumps(model_to_dict(m)).decode()) for m in models],
            )
            for change in changes:
                cursor = db.execute(
                    "INSERT INTO catalogue_changes (at, kind, provider, model, source, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    (change.at, change.kind.value, change.provider, change.model, change.source, change.detail),
                )
                saved.append(
                    Change(
                        change.at,
                        change.kind,
                        change.provider,
                        change.model,
                        change.source,
                        change.detail,
                        cursor.lastrowid,
                    )
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return saved

    async def save(
        self,
        revision: int,
        updated_at: float,
        models: list[ModelRecord],
        providers: list[ProviderRecord],
        changes: list[Change],
    ) -> list[Change]:
        return await self._run(self._save, revision, updated_at, models, providers, changes)

    def _changes(self, since: float, provider: str | None, limit: int) -> list[Change]:
        query = "SELECT id, at, kind, provider, model, source, detail FROM catalogue_changes WHERE at >= ?"
        arguments: list[object] = [since]
        if provider:
            query += " AND provider = ?"
            arguments.append(provider)
        query += " ORDER BY id DESC LIMIT ?"
        arguments.append(limit)
        return [_change(row) for row in self._connection.execute(query, arguments)]

    async def changes(self, since: float, provider: str | None, limit: int) -> list[Change]:
        return await self._run(self._changes, since, provider, limit)

    async def ping(self) -> bool:
        return await self._run(lambda: self._connection.execute("SELECT 1").fetchone() == (1,))
