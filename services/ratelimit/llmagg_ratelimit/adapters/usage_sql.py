"""The usage ledger's SQL, one text for SQLite and PostgreSQL but for placeholders and time buckets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from llmagg_ratelimit.domain.ports import DIMENSIONS, SERVED, UsageQuery, UsageRecord, UsageTotal

COLUMNS = (
    "ts", "client_id", "provider", "account", "model", "prompt_tokens", "completion_tokens", "latency_ms",
    "outcome", "cost_avoided_usd", "requested_model", "trace_id", "first_token_ms",
)  # fmt: skip


@dataclass(frozen=True)
class Dialect:
    name: str
    real: str  # the type of a floating point column
    month_start: str  # SQL giving the epoch start of the UTC month of `ts`

    def placeholder(self, index: int) -> str:
        return "?"  # llmagg.common.sql spells it for the driver


SQLITE = Dialect("sqlite", "REAL", "CAST(strftime('%s', ts, 'unixepoch', 'start of month') AS REAL)")
POSTGRES = Dialect(
    "postgres",
    "DOUBLE PRECISION",
    "extract(epoch from date_trunc('month', to_timestamp(ts) AT TIME ZONE 'UTC'))::double precision",
)


def create_statements(dialect: Dialect) -> list[str]:
    real = dialect.real
    return [
        f"""CREATE TABLE IF NOT EXISTS usage (
            ts {real} NOT NULL,
            client_id TEXT NOT NULL,
            provider TEXT NOT NULL,
            account TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            latency_ms {real} NOT NULL,
            outcome TEXT NOT NULL,
            cost_avoided_usd {real} NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts)",
        "CREATE INDEX IF NOT EXISTS usage_client_ts ON usage (client_id, ts)",
        # The batches whose rows are stored, written in the rows' transaction: a batch the router sends
        # again (its answer lost, the replica that had it killed) is stored once, by whichever replica.
        f"CREATE TABLE IF NOT EXISTS usage_batches (batch_id TEXT PRIMARY KEY, ts {real} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS usage_batches_ts ON usage_batches (ts)",
    ]


def added_columns(dialect: Dialect) -> list[tuple[str, str]]:
    """Columns later than the first table, added to a table that lacks them (an older release's database)."""
    return [
        ("requested_model", "TEXT NOT NULL DEFAULT ''"),
        ("trace_id", "TEXT NOT NULL DEFAULT ''"),
        ("first_token_ms", dialect.real),  # NULL: not measured
    ]


def existing_columns_statement(dialect: Dialect) -> str:
    if dialect.name == "sqlite":
        return "SELECT name FROM pragma_table_info('usage')"
    return "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'usage'"


def add_column_statement(dialect: Dialect, name: str, definition: str) -> str:
    # PostgreSQL's IF NOT EXISTS: two replicas starting at once both add it, the second as a no-op.
    if_missing = "IF NOT EXISTS " if dialect.name == "postgres" else ""
    return f"ALTER TABLE usage ADD COLUMN {if_missing}{name} {definition}"


def insert_statement(dialect: Dialect) -> str:
    places = ", ".join(dialect.placeholder(i + 1) for i in range(len(COLUMNS)))
    return f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({places})"


BATCH_STATEMENT = "INSERT INTO usage_batches (batch_id, ts) VALUES (?, ?) ON CONFLICT DO NOTHING"
PRUNE_BATCHES_STATEMENT = "DELETE FROM usage_batches WHERE ts < ?"
BATCHES_KEPT_S = 7 * 86400.0  # far longer than a router resends a batch


def row_values(row: UsageRecord) -> tuple:
    return tuple(getattr(row, column) for column in COLUMNS)


def recent_statement(limit: int) -> str:
    """The latest `limit` rows, newest first (`limit` is an int the servicer has checked)."""
    return f"SELECT {', '.join(COLUMNS)} FROM usage ORDER BY ts DESC LIMIT {int(limit)}"


def record(row) -> UsageRecord:
    values = dict(zip(COLUMNS, row, strict=True))
    for column in ("prompt_tokens", "completion_tokens"):
        values[column] = int(values[column])
    for column in ("ts", "latency_ms", "cost_avoided_usd"):
        values[column] = float(values[column])
    if values["first_token_ms"] is not None:
        values["first_token_ms"] = float(values["first_token_ms"])
    return UsageRecord(**values)


def _bucket(dialect: Dialect, bucket: str) -> str:
    if bucket == "hour":
        return "(CAST(ts / 3600 AS BIGINT) * 3600)" if dialect.name == "sqlite" else "(floor(ts / 3600) * 3600)"
    if bucket == "day":
        return "(CAST(ts / 86400 AS BIGINT) * 86400)" if dialect.name == "sqlite" else "(floor(ts / 86400) * 86400)"
    return dialect.month_start


def select_statement(dialect: Dialect, query: UsageQuery) -> tuple[str, list]:
    """The query's SQL and its parameters. Dimensions come from a fixed list, never from the client.

    The columns are the bucket's start (only when bucketed), the dimensions, then the sums. A row is one
    attempt: requests are the attempts that answered (SERVED), attempts all of them."""
    dimensions = [d for d in query.group_by if d in DIMENSIONS]
    params: list = [query.start, query.end]
    where = [f"ts >= {dialect.placeholder(1)}", f"ts < {dialect.placeholder(2)}"]
    for dimension, value in query.filters:
        if dimension not in DIMENSIONS:
            raise ValueError(f"unknown usage dimension {dimension!r}")
        params.append(value)
        where.append(f"{dimension} = {dialect.placeholder(len(params))}")
    keys = ([_bucket(dialect, query.bucket)] if query.bucket else []) + dimensions
    positions = ", ".join(str(i + 1) for i in range(len(keys)))
    selected = "".join(f"{key}, " for key in keys)
    sql = (
        f"SELECT {selected}COUNT(*), SUM(CASE WHEN outcome = '{SERVED}' THEN 1 ELSE 0 END), "
        "SUM(prompt_tokens), SUM(completion_tokens), AVG(latency_ms), "
        f"SUM(cost_avoided_usd) FROM usage WHERE {' AND '.join(where)}"
    )
    if keys:
        sql += f" GROUP BY {positions} ORDER BY {positions}"
    return sql, params


def totals(rows, query: UsageQuery) -> list[UsageTotal]:
    dimensions = [d for d in query.group_by if d in DIMENSIONS]
    result = []
    for row in rows:
        values = list(row)
        bucket = float(values.pop(0)) if query.bucket else query.start
        named = tuple(zip(dimensions, (str(v) for v in values[: len(dimensions)]), strict=True))
        count, served, prompt, completion, latency, cost = values[len(dimensions) :]
        if not count:
            continue  # an aggregate over no row at all
        result.append(
            UsageTotal(
                bucket_start=bucket,
                dimensions=named,
                requests=int(served or 0),
                attempts=int(count),
                prompt_tokens=int(prompt or 0),
                completion_tokens=int(completion or 0),
                latency_ms_avg=float(latency or 0.0),
                cost_avoided_usd=float(cost or 0.0),
            )
        )
    return result


Batch = tuple[Sequence[UsageRecord], str]  # rows and the batch id they are stored once under ("": none)


class GroupCommit:
    """Rows written by concurrent callers go to the database together: one transaction for everything
    that arrived while the previous one was being written. Each caller returns once its rows are stored
    (or gets the error that stopped them)."""

    def __init__(self, write: Callable[[list[Batch]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[tuple[Batch, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, rows: Sequence[UsageRecord], batch_id: str = "") -> None:
        done = asyncio.get_running_loop().create_future()
        self._pending.append(((rows, batch_id), done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._write([rows for rows, _ in batch])
            except Exception as error:  # every caller of this batch learns it was not stored
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
