"""`python -m llmagg_router`: the router gRPC service."""

from __future__ import annotations

import logging
import sys

from llmagg.common.logging import configure_logging, log_fields
from llmagg.common.server import serve_until_signalled, service_cli
from llmagg.common.workers import WorkerPlan, Workers
from llmagg_router.adapters.discovery_catalog import DiscoveryCatalog
from llmagg_router.adapters.ratelimit_quota import RatelimitQuota
from llmagg_router.adapters.redis_health import RedisHealthStore
from llmagg_router.domain.config import ConfigError
from llmagg_router.memory import keep_allocator_thresholds
from llmagg_router.server import build_router, build_server, load_config, warn_of_unsupported_protocols
from llmagg_router.settings import RouterSettings

log = logging.getLogger("router")


async def main(settings: RouterSettings) -> None:
    if not keep_allocator_thresholds():
        log.info("no glibc mallopt: memory freed after large requests may stay with the process")
    config = load_config(settings)
    router = build_router(settings, config)
    keys, quota, catalog, health = router.ports.keys, router.ports.quota, router.ports.catalog, router.ports.health
    await keys.start()
    if isinstance(quota, RatelimitQuota):
        await quota.start()
    if isinstance(health, RedisHealthStore):
        await health.start()  # reads the cooldowns and open circuits the other replicas shared
    await catalog.start()
    if router.meta is not None:
        await router.meta.store.start()  # what the replicas learned before this one started
    if isinstance(catalog, DiscoveryCatalog) and not await catalog.first_catalogue(settings.catalog_wait_s):
        log.warning("no catalogue from discovery yet: routing on the configuration until it comes")
    accounts = sum(len(keys.accounts(provider)) for provider in config.providers)
    log.info(
        "loaded %d providers, %d accounts (%s), %d fallback chains",
        len(config.providers),
        accounts,
        settings.key_source,
        len(config.fallback_chains),
        extra=log_fields(routable=sorted(router.resolver.routable_providers), health=settings.health_store),
    )
    warn_of_unsupported_protocols(config, router.adapters, keys)
    if not accounts:
        log.warning("no provider account is configured: chat requests will fail until one is added (see README)")

    async def close_adapters() -> None:
        await router.abandoned_settled()
        if isinstance(quota, RatelimitQuota):
            await quota.close()  # sends the settlements still queued
        if isinstance(health, RedisHealthStore):
            await health.close()  # writes the health events still queued
        await catalog.close()
        if router.meta is not None:
            await router.meta.store.close()  # writes what this replica learned last
        await keys.close()
        for adapter in router.adapters.values():
            await adapter.close()

    await serve_until_signalled(build_server(settings, router), on_stop=close_adapters)


def cli() -> None:
    settings = RouterSettings()
    if settings.workers > 1 and settings.worker is None:
        configure_logging("router", settings.log_level, settings.log_format)
        sys.exit(Workers(worker_plan(settings)).run())
    service_cli("router", settings, main, (ConfigError,))


def worker_plan(settings: RouterSettings) -> WorkerPlan:
    return WorkerPlan(
        package="llmagg_router",
        env_prefix=settings.model_config["env_prefix"],
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        metrics_port=settings.metrics_port,
        http_port=settings.http_port,
        stop_timeout_s=settings.drain_s + settings.grace_s + 5,
    )


if __name__ == "__main__":
    cli()
