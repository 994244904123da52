"""The one place where settings choose the ratelimit service's backends."""

from __future__ import annotations

from llmagg.common.peers import peer_token
from llmagg.common.server import ReadinessCheck
from llmagg_ratelimit.adapters.credentials_limits import CredentialsLimits
from llmagg_ratelimit.adapters.discovery_limits import DiscoveryLimits
from llmagg_ratelimit.adapters.failover_counters import FailoverCounters
from llmagg_ratelimit.adapters.memory_counters import MemoryCounters
from llmagg_ratelimit.adapters.redis_counters import RedisCounters
from llmagg_ratelimit.adapters.sql_usage import SqlUsage, postgres_usage, sqlite_usage
from llmagg_ratelimit.adapters.usage_sql import POSTGRES
from llmagg_ratelimit.domain.clients import ClientLimits, ClientPolicy
from llmagg_ratelimit.domain.limits import LimitBook
from llmagg_ratelimit.domain.ports import CounterStore, UsageStore
from llmagg_ratelimit.settings import RatelimitSettings


def create_counters(settings: RatelimitSettings) -> CounterStore:
    match settings.store:
        case "memory":
            return MemoryCounters()
        case "redis":
            remote = RedisCounters(
                settings.redis_url.get_secret_value(), settings.redis_prefix, settings.redis_timeout_s
            )
            return FailoverCounters(remote, settings.local_share)
    raise ValueError(f"unknown counter store {settings.store!r}")


def create_usage(settings: RatelimitSettings) -> UsageStore:
    match settings.usage_store:
        case "sqlite":
            return sqlite_usage(settings.usage_path)
        case "postgres":
            if settings.postgres_dsn is None:
                raise ValueError("RATELIMIT_USAGE_STORE=postgres needs RATELIMIT_POSTGRES_DSN")
            return postgres_usage(settings.postgres_dsn.get_secret_value())
    raise ValueError(f"unknown usage store {settings.usage_store!r}")


def create_account_limits(settings: RatelimitSettings, book: LimitBook) -> CredentialsLimits | None:
    if not settings.credentials_address:
        return None
    return CredentialsLimits(
        settings.credentials_address,
        peer_token(settings, "credentials"),
        book,
        refresh_s=settings.accounts_refresh_s,
    )


def create_catalog_limits(settings: RatelimitSettings, book: LimitBook) -> DiscoveryLimits | None:
    match settings.catalog:
        case "registry":
            return None
        case "discovery":
            if not settings.discovery_address:
                raise ValueError("RATELIMIT_CATALOG=discovery needs RATELIMIT_DISCOVERY_ADDRESS")
            return DiscoveryLimits(settings.discovery_address, book, peer_token(settings, "discovery"))
    raise ValueError(f"unknown catalog {settings.catalog!r}")


def create_client_policy(settings: RatelimitSettings) -> ClientPolicy:
    default = ClientLimits.of(
        {"rpm": settings.client_rpm, "tpd": settings.client_tpd, "tpmonth": settings.client_tpmonth}
    )
    overrides = {client: ClientLimits.of(limits) for client, limits in settings.client_limits.items()}
    return ClientPolicy(default, overrides)


def create_readiness(
    counters: CounterStore, usage: UsageStore, accounts: CredentialsLimits | None, catalog: DiscoveryLimits | None
) -> list[ReadinessCheck]:
    """Health names of the backends that can fail; none is critical: the service keeps deciding
    (locally while Redis is down, on the last overrides while credentials is, on the last catalogue's
    limits while discovery is)."""
    checks = []
    if isinstance(counters, FailoverCounters):
        checks.append(ReadinessCheck("redis", counters.healthy_or_recover, critical=False))
    if isinstance(usage, SqlUsage) and usage.dialect is POSTGRES:
        checks.append(ReadinessCheck("postgres", usage.ping, critical=False))
    if accounts is not None:
        checks.append(ReadinessCheck("credentials", accounts.healthy, critical=False))
    if catalog is not None:
        checks.append(ReadinessCheck("discovery", catalog.healthy, critical=False))
    return checks
