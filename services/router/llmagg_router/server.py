"""Wires the router from settings: registry + config -> ports -> Router -> servicer -> server."""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping

from llmagg.common.logging import log_fields
from llmagg.common.server import GrpcServer, ServiceBinding
from llmagg.registry import RegistryError, read_yaml, registry_entries
from llmagg_router.backends import create_adapters, create_meta_controller, create_ports, create_readiness
from llmagg_router.domain.affinity import Affinity
from llmagg_router.domain.config import ConfigError, RoutingConfig, build_config
from llmagg_router.domain.limits import RouterLimits
from llmagg_router.domain.ports import KeySource
from llmagg_router.domain.resolver import Resolver
from llmagg_router.domain.router import Router
from llmagg_router.http_servicer import RouterHttpPort
from llmagg_router.servicer import SERVICE_NAME, RouterServicer, add_to_server
from llmagg_router.settings import RouterSettings

log = logging.getLogger("router")


def load_config(settings: RouterSettings, environ: Mapping[str, str] = os.environ) -> RoutingConfig:
    try:
        shipped = registry_entries(settings.registry)
        user = read_yaml(settings.config, "configuration file") if settings.config else None
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    return build_config(shipped, user, environ)


def warn_of_unsupported_protocols(config: RoutingConfig, protocols: Collection[str], keys: KeySource) -> dict[str, str]:
    """Warn of every provider whose wire protocol no adapter speaks (it is not routable), naming it and
    any account the key source holds for it; provider id -> protocol."""
    unsupported = {pid: p.protocol for pid, p in sorted(config.providers.items()) if p.protocol not in protocols}
    if unsupported:
        configured = [pid for pid in unsupported if keys.accounts(pid)]
        log.warning(
            "not routable, no adapter speaks their protocol yet: %s%s",
            ", ".join(f"{pid} ({protocol})" for pid, protocol in unsupported.items()),
            f"; the accounts of {', '.join(configured)} go unused" if configured else "",
            extra=log_fields(providers=list(unsupported), unused_accounts_of=configured),
        )
    return unsupported


def build_router(settings: RouterSettings, config: RoutingConfig) -> Router:
    ports = create_ports(settings, config)
    adapters = create_adapters(settings)
    resolver = Resolver(config, ports.keys, ports.health, adapters.keys(), ports.catalog)
    limits = RouterLimits(
        max_attempts=settings.max_attempts,
        request_timeout_s=settings.request_timeout_s,
        default_cooldown_s=settings.default_cooldown_s,
        first_byte_timeout_s=settings.first_byte_timeout_s,
        stream_max_s=settings.stream_max_s,
        stream_upstream=settings.stream_upstream,
        max_answer_bytes=settings.max_response_bytes,
        max_wait_s=settings.max_wait_s,
        hedge=settings.hedge,
        hedge_delay_s=settings.hedge_delay_s,
    )
    affinity = Affinity(ttl_s=settings.affinity_ttl_s) if settings.affinity_ttl_s else None
    return Router(
        resolver,
        ports,
        adapters,
        limits,
        trace_content=settings.trace_content,
        affinity=affinity,
        meta=create_meta_controller(settings),
    )


def build_server(settings: RouterSettings, router: Router) -> GrpcServer:
    servicer = RouterServicer(router, settings.max_inflight_body_bytes, settings.max_body_bytes)
    binding = ServiceBinding(SERVICE_NAME, servicer, add_to_server)
    data_port = [RouterHttpPort(servicer, settings.http_port, settings.max_body_bytes)] if settings.http_port else []
    return GrpcServer(
        "router",
        settings,
        [binding],
        readiness=create_readiness(router.ports),
        interrupt=router.interrupt,
        reuse_port=settings.worker is not None,
        companions=data_port,
    )
