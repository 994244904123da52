"""The one place where settings choose the agent's backends: its thread store, its way to the models, its metrics."""

from __future__ import annotations

import sqlite3

import psycopg
import psycopg_pool

from llmagg.common.sql import POSTGRES_SCHEMES, PostgresDatabase, SqliteDatabase, sqlite_path
from llmagg_agent.adapters.prometheus_metrics import PrometheusAgentMetrics
from llmagg_agent.adapters.router_client import RouterClient
from llmagg_agent.adapters.sql_store import SqlThreadStore
from llmagg_agent.domain.metrics import AgentMetrics
from llmagg_agent.domain.threads import ThreadStore
from llmagg_agent.settings import AgentSettings

# What stops the service at start: a setting it cannot use, a database it cannot open or reach.
STARTUP_ERRORS = (ValueError, OSError, sqlite3.Error, psycopg.Error, psycopg_pool.PoolTimeout)


def create_store(settings: AgentSettings) -> ThreadStore:
    url = settings.database()
    if url.startswith("sqlite:"):
        return SqlThreadStore(SqliteDatabase(sqlite_path(url)))
    if url.startswith(POSTGRES_SCHEMES):
        return SqlThreadStore(PostgresDatabase(url, pool_name="agent-threads"))
    raise ValueError(f"AGENT_DATABASE_URL must start with sqlite:/// or postgresql://, got {url.split(':')[0]!r}...")


def create_router_client(settings: AgentSettings) -> RouterClient:
    return RouterClient(settings.router_address, settings.router_token or None, settings.max_message_bytes)


def create_metrics(settings: AgentSettings) -> AgentMetrics | None:
    """Prometheus counters when the service serves metrics (AGENT_METRICS_PORT, 0 for none)."""
    return PrometheusAgentMetrics() if settings.metrics_port else None
