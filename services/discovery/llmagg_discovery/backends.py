"""The one place where settings choose the store, the account directory and the sources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmagg.common.peers import peer_token
from llmagg.registry import ConfiguredAccount, Provider
from llmagg_discovery.adapters.account_source import AccountLimitsSource
from llmagg_discovery.adapters.community_source import CommunitySource
from llmagg_discovery.adapters.config_accounts import ConfigAccounts
from llmagg_discovery.adapters.credentials_accounts import CredentialsAccounts
from llmagg_discovery.adapters.http import HttpClient
from llmagg_discovery.adapters.model_list_source import ModelListSource
from llmagg_discovery.adapters.probe_source import ProbeSource
from llmagg_discovery.adapters.sql_store import postgres_store, sqlite_store
from llmagg_discovery.domain.baseline import ConfigSource, RegistrySource
from llmagg_discovery.domain.ports import AccountDirectory, CatalogueStore, Source
from llmagg_discovery.domain.probes import ProbePlan
from llmagg_discovery.settings import DiscoverySettings


def create_store(settings: DiscoverySettings) -> CatalogueStore:
    match settings.store:
        case "sqlite":
            return sqlite_store(settings.sqlite_path)
        case "postgres":
            if settings.postgres_dsn is None:
                raise ValueError("DISCOVERY_STORE=postgres needs DISCOVERY_POSTGRES_DSN (postgresql://...)")
            return postgres_store(settings.postgres_dsn.get_secret_value())
    raise ValueError(f"unknown discovery store {settings.store!r}")


def create_accounts(
    settings: DiscoverySettings, providers: Mapping[str, Provider], configured: tuple[ConfiguredAccount, ...]
) -> AccountDirectory:
    match settings.key_source:
        case "config":
            return ConfigAccounts(configured)
        case "credentials":
            if not settings.credentials_address:
                raise ValueError("DISCOVERY_KEY_SOURCE=credentials needs DISCOVERY_CREDENTIALS_ADDRESS (host:port)")
            return CredentialsAccounts(
                settings.credentials_address,
                peer_token(settings, "credentials"),
                providers,
                refresh_s=settings.accounts_refresh_s,
            )
    raise ValueError(f"unknown key source {settings.key_source!r}")


def create_sources(
    settings: DiscoverySettings,
    shipped: Mapping[str, Provider],
    user_entries: list[Mapping[str, Any]],
    http: HttpClient,
) -> list[Source]:
    """The baseline (run once at start), then each network source whose interval is not 0."""
    timeout = settings.source_timeout_s
    sources: list[Source] = [RegistrySource(shipped), ConfigSource(user_entries)]
    if settings.community_interval_s:
        sources.append(CommunitySource(settings.community_url, http, settings.community_interval_s, timeout))
    if settings.models_interval_s:
        sources.append(ModelListSource(http, settings.models_interval_s, timeout))
    if settings.accounts_interval_s:
        sources.append(AccountLimitsSource(http, settings.accounts_interval_s, timeout))
    if settings.probe_interval_s:
        plan = ProbePlan(settings.probe_interval_s, settings.probe_retry_s, settings.probe_batch)
        sources.append(ProbeSource(http, plan, timeout, settings.probe_request_timeout_s))
    return sources
