"""The one place where settings choose the backends of the router's ports."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from llmagg.common.peers import peer_token
from llmagg.common.server import ReadinessCheck
from llmagg_router.adapters.anthropic_messages import AnthropicDialect
from llmagg_router.adapters.cohere_chat import CohereDialect
from llmagg_router.adapters.config_keys import ConfigKeySource
from llmagg_router.adapters.credentials_keys import CredentialsKeySource
from llmagg_router.adapters.discovery_catalog import DiscoveryCatalog
from llmagg_router.adapters.gemini_generate import GeminiDialect
from llmagg_router.adapters.http_adapter import HttpAdapter
from llmagg_router.adapters.http_upstream import HttpUpstream
from llmagg_router.adapters.memory_health import MemoryHealthStore
from llmagg_router.adapters.memory_routing_stats import MemoryRoutingStats
from llmagg_router.adapters.openai_http import OpenAIDialect
from llmagg_router.adapters.prometheus_metrics import HealthCollector, PrometheusRouterMetrics
from llmagg_router.adapters.ratelimit_quota import RatelimitQuota
from llmagg_router.adapters.redis_health import RedisHealthStore
from llmagg_router.adapters.redis_routing_stats import RedisRoutingStats
from llmagg_router.adapters.unmetered_quota import UnmeteredQuota
from llmagg_router.domain.catalog_view import StaticCatalog
from llmagg_router.domain.config import RoutingConfig
from llmagg_router.domain.meta_controller import MetaController
from llmagg_router.domain.ports import CatalogSource, HealthStore, KeySource, QuotaLedger, RouterPorts
from llmagg_router.domain.routing_stats import RoutingStatsStore
from llmagg_router.domain.upstream import ProviderAdapter
from llmagg_router.settings import RouterSettings


def create_key_source(settings: RouterSettings, config: RoutingConfig) -> KeySource:
    match settings.key_source:
        case "config":
            return ConfigKeySource(config.accounts, rejected_for_s=settings.rejected_key_cooldown_s)
        case "credentials":
            if not settings.credentials_address:
                raise ValueError("ROUTER_KEY_SOURCE=credentials needs ROUTER_CREDENTIALS_ADDRESS (host:port)")
            return CredentialsKeySource(
                settings.credentials_address,
                peer_token(settings, "credentials"),
                config.providers,
                refresh_s=settings.accounts_refresh_s,
                rejected_for_s=settings.rejected_key_cooldown_s,
            )
    raise ValueError(f"unknown key source {settings.key_source!r}")


def create_catalog_source(settings: RouterSettings, config: RoutingConfig) -> CatalogSource:
    match settings.catalog:
        case "registry":
            return StaticCatalog(config.providers)
        case "discovery":
            if not settings.discovery_address:
                raise ValueError("ROUTER_CATALOG=discovery needs ROUTER_DISCOVERY_ADDRESS (host:port)")
            return DiscoveryCatalog(
                settings.discovery_address,
                config.providers,
                token=peer_token(settings, "discovery"),
            )
    raise ValueError(f"unknown catalog source {settings.catalog!r}")


def create_readiness(ports: RouterPorts) -> list[ReadinessCheck]:
    """Health names for the backends that depend on a peer; none is critical (the router keeps routing)."""
    checks = []
    if isinstance(ports.keys, CredentialsKeySource):
        checks.append(ReadinessCheck("credentials", ports.keys.healthy, critical=False))
    if isinstance(ports.quota, RatelimitQuota):
        checks.append(ReadinessCheck("ratelimit", ports.quota.healthy, critical=False))
    if isinstance(ports.catalog, DiscoveryCatalog):
        checks.append(ReadinessCheck("discovery", ports.catalog.healthy, critical=False))
    if isinstance(ports.health, RedisHealthStore):
        checks.append(ReadinessCheck("redis", ports.health.healthy, critical=False))
    return checks


def create_quota_ledger(settings: RouterSettings) -> QuotaLedger:
    match settings.quota_ledger:
        case "unmetered":
            return UnmeteredQuota()
        case "ratelimit":
            if not settings.ratelimit_address:
                raise ValueError("ROUTER_QUOTA_LEDGER=ratelimit needs ROUTER_RATELIMIT_ADDRESS (host:port)")
            return RatelimitQuota(
                settings.ratelimit_address,
                peer_token(settings, "ratelimit"),
                timeout_s=settings.ratelimit_timeout_s,
                queue_size=settings.settle_queue_size,
                settle_before_answer=settings.settle_before_answer,
            )
    raise ValueError(f"unknown quota ledger {settings.quota_ledger!r}")


def create_health_store(settings: RouterSettings) -> HealthStore:
    match settings.health_store:
        case "memory":
            return MemoryHealthStore(
                failure_threshold=settings.circuit_failure_threshold, open_for_s=settings.circuit_open_s
            )
        case "redis":
            return RedisHealthStore(
                settings.redis_url.get_secret_value(),
                prefix=settings.redis_prefix,
                timeout_s=settings.redis_timeout_s,
                queue_size=settings.health_queue_size,
                failure_threshold=settings.circuit_failure_threshold,
                open_for_s=settings.circuit_open_s,
            )
    raise ValueError(f"unknown health store {settings.health_store!r}")


def create_routing_stats(settings: RouterSettings) -> RoutingStatsStore:
    match settings.routing_stats:
        case "memory":
            return MemoryRoutingStats()
        case "redis":
            return RedisRoutingStats(
                settings.redis_url.get_secret_value(),
                prefix=settings.redis_prefix,
                timeout_s=settings.redis_timeout_s,
                sync_s=settings.routing_stats_sync_s,
            )
    raise ValueError(f"unknown routing stats store {settings.routing_stats!r}")


def create_meta_controller(settings: RouterSettings) -> MetaController | None:
    if not settings.meta_controller:
        return None
    return MetaController(create_routing_stats(settings), discount=settings.meta_discount)


def create_ports(
    settings: RouterSettings, config: RoutingConfig, registry: CollectorRegistry = REGISTRY
) -> RouterPorts:
    health = create_health_store(settings)
    registry.register(HealthCollector(health))
    return RouterPorts(
        keys=create_key_source(settings, config),
        quota=create_quota_ledger(settings),
        health=health,
        metrics=PrometheusRouterMetrics(registry),
        catalog=create_catalog_source(settings, config),
    )


def create_adapters(settings: RouterSettings) -> dict[str, ProviderAdapter]:
    """One adapter per wire protocol the router speaks, all over one connection pool."""
    http = HttpUpstream(
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        max_connections=settings.max_upstream_connections,
        max_response_bytes=settings.max_response_bytes,
        max_event_bytes=settings.max_stream_line_bytes,
    )
    dialects = {
        "openai": OpenAIDialect(),
        "anthropic": AnthropicDialect(),
        "gemini": GeminiDialect(),
        "cohere": CohereDialect(),
    }
    return {protocol: HttpAdapter(http, dialect) for protocol, dialect in dialects.items()}
