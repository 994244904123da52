"""The thread store's promises, on SQLite and on a real PostgreSQL alike: checkpoints round-trip, a stale save
is refused whole, a lease is held by one run at a time across replicas, lists page and filter."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.sql import SqliteDatabase, sqlite_path
from llmagg_agent.adapters.sql_store import SqlThreadStore
from llmagg_agent.domain.threads import AgentStatus, HumanInput, StaleThread, Thread


@pytest.fixture(params=["sqlite", "postgresql"])
async def replicas(request, tmp_path) -> AsyncIterator[tuple[SqlThreadStore, SqlThreadStore]]:
    """Two stores on one database, as two agent replicas would have; empty at the start of each test."""
    if request.param == "sqlite":
        path = tmp_path / "threads.db"
        stores = (SqlThreadStore(SqliteDatabase(path)), SqlThreadStore(SqliteDatabase(path)))
    else:
        import psycopg

        from llmagg.common.sql import PostgresDatabase

        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(url, autocommit=True) as connection:  # the server is shared by the session
            connection.execute("DROP TABLE IF EXISTS agent_threads, agent_messages, agent_leases")
        stores = (SqlThreadStore(PostgresDatabase(url)), SqlThreadStore(PostgresDatabase(url)))
    for store in stores:
        await store.setup()
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


def a_thread(thread_id: str = "t1", **fields) -> Thread:
    return Thread(thread_id, created_at=fields.pop("created_at", 100.0), updated_at=100.0, **fields)


async def test_a_thread_round_trips_with_its_messages_and_state(replicas):
    store, _ = replicas
    thread = a_thread(client_id="client-a", request_params={"instruction": "x", "provider": None})
    thread.messages.append({"role": "user", "content": "hi ✓"})
    await store.save(thread)
    thread.messages.append({"role": "assistant", "content": None, "tool_calls": [{"id": "q", "type": "function"}]})
    thread.status, thread.human_input, thread.model_used = (
        AgentStatus.REQUIRES_HUMAN_INPUT,
        HumanInput("q", "Ok?"),
        "p/m",
    )
    await store.save(thread)
    loaded = await store.load("t1")
    assert loaded is not None
    assert (loaded.version, loaded.stored_messages, loaded.client_id) == (2, 2, "client-a")
    assert loaded.messages == thread.messages and loaded.state() == thread.state()
    assert loaded.status == AgentStatus.REQUIRES_HUMAN_INPUT and loaded.human_input == HumanInput("q", "Ok?")
    assert await store.load("missing") is None


async def test_a_save_from_a_stale_copy_is_refused_and_changes_nothing(replicas):
    store, other = replicas
    await store.save(a_thread(messages=[{"role": "user", "content": "1"}]))
    mine, theirs = await store.load("t1"), await other.load("t1")
    theirs.messages.append({"role": "assistant", "content": "theirs"})
    await other.save(theirs)
    mine.messages.append({"role": "assistant", "content": "mine"})
    mine.status = AgentStatus.ERROR
    with pytest.raises(StaleThread):
        await store.save(mine)
    stored = await store.load("t1")
    assert [m["content"] for m in stored.messages] == ["1", "theirs"] and stored.status == AgentStatus.RUNNING
    with pytest.raises(StaleThread):  # a new thread whose id is taken meanwhile
        await store.save(a_thread())


async def test_one_lease_at_a_time_across_replicas_until_it_is_released_or_expires(replicas):
    store, other = replicas
    assert await store.claim("t1", "replica-a/run-1", until=200.0, now=100.0)
    assert not await other.claim("t1", "replica-b/run-1", until=250.0, now=150.0)
    assert not await store.claim("t1", "replica-a/run-2", until=250.0, now=150.0)  # a second run of the same replica
    await other.release("t1", "replica-b/run-1")  # not its lease: nothing happens
    assert not await other.claim("t1", "replica-b/run-1", until=250.0, now=150.0)
    await store.release("t1", "replica-a/run-1")
    assert await other.claim("t1", "replica-b/run-1", until=250.0, now=150.0)
    assert await store.claim("t1", "replica-a/run-3", until=400.0, now=300.0)  # replica-b died: its lease ran out


async def test_delete_needs_the_lease_and_takes_the_messages(replicas):
    store, other = replicas
    await store.save(a_thread(messages=[{"role": "user", "content": "x"}]))
    assert await store.claim("t1", "a/1", until=200.0, now=100.0)
    with pytest.raises(StaleThread):
        await other.delete("t1", "b/1")
    assert await store.delete("t1", "a/1") is True
    assert await other.load("t1") is None
    await store.save(a_thread(messages=[{"role": "user", "content": "fresh"}]))  # the id can start over
    assert [m["content"] for m in (await store.load("t1")).messages] == ["fresh"]


async def test_lists_are_newest_first_paged_and_filtered_by_client(replicas):
    store, _ = replicas
    await store.save(a_thread("old", created_at=1.0, client_id="a"))
    await store.save(a_thread("mid-b", created_at=2.0, client_id="b"))
    await store.save(a_thread("mid-a", created_at=2.0))
    await store.save(a_thread("new", created_at=3.0, client_id="a"))
    every = await store.list(10, None, None)
    assert [s.thread_id for s in every] == ["new", "mid-b", "mid-a", "old"]
    assert [s.thread_id for s in await store.list(2, (2.0, "mid-b"), None)] == ["mid-a", "old"]
    assert [s.thread_id for s in await store.list(10, None, "a")] == ["new", "mid-a", "old"]


async def test_a_database_another_process_keeps_locked_is_a_503_not_a_crash(tmp_path):
    path = tmp_path / "threads.db"
    store = SqlThreadStore(SqliteDatabase(path, busy_timeout_s=0.1))
    await store.setup()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ServiceError) as refused:
            await store.save(a_thread())
    finally:
        holder.rollback()
        holder.close()
    assert (refused.value.kind, refused.value.code) == (ErrorKind.UNAVAILABLE, "thread_store_unavailable")
    assert await store.load("t1") is None
    await store.save(a_thread())  # usable again once the lock is gone
    await store.close()


def test_sqlite_urls():
    assert sqlite_path("sqlite:////abs/threads.db").as_posix() == "/abs/threads.db"
    assert sqlite_path("sqlite:///relative.db").as_posix() == "relative.db"
    with pytest.raises(ValueError, match="sqlite:////absolute"):
        sqlite_path("sqlite://nohost")
