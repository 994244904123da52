"""Wires the discovery service from settings: registry + config -> sources, store, accounts -> Discovery -> server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from llmagg.common.server import GrpcServer, ReadinessCheck, ServiceBinding
from llmagg.common.watch_streams import WatchStreams
from llmagg.registry import ConfiguredAccount, Provider, merge_providers, parse_accounts, read_yaml, registry_entries
from llmagg_discovery import servicer
from llmagg_discovery.adapters.http import HttpClient
from llmagg_discovery.adapters.prometheus_metrics import DiscoveryCollector
from llmagg_discovery.backends import create_accounts, create_sources, create_store
from llmagg_discovery.domain.catalogue import Policy
from llmagg_discovery.domain.discovery import Discovery
from llmagg_discovery.domain.scheduler import source_backoff
from llmagg_discovery.settings import DiscoverySettings


@dataclass(frozen=True)
class Baseline:
    shipped: dict[str, Provider]  # the registry file alone
    providers: dict[str, Provider]  # with the user's entries merged in
    user_entries: list[Mapping[str, Any]]
    accounts: tuple[ConfiguredAccount, ...]


def load_baseline(settings: DiscoverySettings, environ: Mapping[str, str] = os.environ) -> Baseline:
    entries = registry_entries(settings.registry)
    user = (read_yaml(settings.config, "configuration file") if settings.config else None) or {}
    user_entries = list(user.get("providers") or [])
    providers = merge_providers(entries, user_entries)
    accounts = parse_accounts(user.get("accounts") or [], providers, environ) if settings.key_source == "config" else ()
    return Baseline(merge_providers(entries), providers, user_entries, accounts)


def build_discovery(settings: DiscoverySettings, baseline: Baseline) -> tuple[Discovery, HttpClient]:
    http = HttpClient(settings.http_timeout_s)
    discovery = Discovery(
        Policy(grace_s=settings.retire_after_s, suspend_after=settings.suspend_after),
        create_store(settings),
        create_sources(settings, baseline.shipped, baseline.user_entries, http),
        baseline.providers,
        create_accounts(settings, baseline.providers, baseline.accounts),
        backoff=source_backoff(settings.backoff_base_s, settings.backoff_max_s),
    )
    return discovery, http


def build_server(
    settings: DiscoverySettings, discovery: Discovery, registry: CollectorRegistry = REGISTRY
) -> GrpcServer:
    streams = WatchStreams()  # the routers' catalogue watches, ended as the service stops
    binding = ServiceBinding(
        servicer.SERVICE_NAME, servicer.DiscoveryServicer(discovery, streams), servicer.add_to_server
    )
    # Not critical: with its store down the catalogue is served (and followed) from memory.
    store = ReadinessCheck("store", discovery.store_ready, critical=False)
    if settings.metrics_port:
        registry.register(DiscoveryCollector(discovery))
    return GrpcServer("discovery", settings, [binding], readiness=[store], registry=registry, companions=[streams])
