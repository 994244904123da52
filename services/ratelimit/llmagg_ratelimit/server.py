"""Wires the ratelimit service from settings: registry -> limit book -> stores -> ledger -> servicers."""

from __future__ import annotations

from dataclasses import dataclass

from llmagg.common.server import GrpcServer, ServiceBinding
from llmagg.common.watch_streams import WatchStreams
from llmagg.registry import Provider, merge_providers, read_yaml, registry_entries
from llmagg_ratelimit import rls_servicer, servicer, xds_servicer
from llmagg_ratelimit.adapters.credentials_limits import CredentialsLimits
from llmagg_ratelimit.adapters.discovery_limits import DiscoveryLimits
from llmagg_ratelimit.backends import (
    create_account_limits,
    create_catalog_limits,
    create_client_policy,
    create_counters,
    create_readiness,
    create_usage,
)
from llmagg_ratelimit.domain.ledger import Ledger
from llmagg_ratelimit.domain.limits import LimitBook, ProviderQuota, count_limits
from llmagg_ratelimit.settings import RatelimitSettings


def provider_quotas(providers: dict[str, Provider]) -> dict[str, ProviderQuota]:
    """What the registry says of each provider's quotas and prices."""
    return {
        provider.id: ProviderQuota(
            id=provider.id,
            shared=provider.shared_quota,
            reset_timezone=provider.reset_timezone,
            limits=count_limits(provider.limits),
            model_limits={m.id: count_limits(m.limits) for m in provider.models if count_limits(m.limits)},
            prices={m.id: (m.list_price["input"], m.list_price["output"]) for m in provider.models if m.list_price},
        )
        for provider in providers.values()
    }


def load_book(settings: RatelimitSettings) -> LimitBook:
    user = (read_yaml(settings.config, "configuration file") if settings.config else None) or {}
    providers = merge_providers(registry_entries(settings.registry), user.get("providers") or [])
    return LimitBook(provider_quotas(providers))


@dataclass
class Ratelimit:
    ledger: Ledger
    accounts: CredentialsLimits | None
    catalog: DiscoveryLimits | None = None

    async def start(self) -> None:
        await self.ledger.counters.start()
        await self.ledger.usage.start()
        if self.accounts is not None:
            await self.accounts.start()
        if self.catalog is not None:
            await self.catalog.start()

    async def close(self) -> None:
        if self.catalog is not None:
            await self.catalog.close()
        if self.accounts is not None:
            await self.accounts.close()
        await self.ledger.usage.close()
        await self.ledger.counters.close()


def build_ratelimit(settings: RatelimitSettings) -> Ratelimit:
    book = load_book(settings)
    ledger = Ledger(
        book,
        create_counters(settings),
        create_usage(settings),
        create_client_policy(settings),
        reservation_ttl_s=settings.reservation_ttl_s,
        lease_s=settings.lease_s,
        lease_share=settings.lease_share,
    )
    return Ratelimit(ledger, create_account_limits(settings, book), create_catalog_limits(settings, book))


def build_server(settings: RatelimitSettings, ratelimit: Ratelimit) -> GrpcServer:
    streams = WatchStreams()  # the gateways' ECDS streams, ended as the service stops
    bindings = [
        ServiceBinding(
            servicer.SERVICE_NAME,
            servicer.RatelimitServicer(ratelimit.ledger),
            servicer.add_to_server,
        ),
        ServiceBinding(
            rls_servicer.SERVICE_NAME, rls_servicer.RateLimitServicer(ratelimit.ledger), rls_servicer.add_to_server
        ),
        ServiceBinding(
            xds_servicer.SERVICE_NAME,
            xds_servicer.ExtensionConfigServicer(ratelimit.ledger.clients.limited_clients(), streams),
            xds_servicer.add_to_server,
        ),
    ]
    ledger = ratelimit.ledger
    readiness = create_readiness(ledger.counters, ledger.usage, ratelimit.accounts, ratelimit.catalog)
    return GrpcServer("ratelimit", settings, bindings, readiness=readiness, companions=[streams])
