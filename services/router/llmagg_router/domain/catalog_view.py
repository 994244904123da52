"""What the router may route to, as the catalogue says: the configured providers with the discovered
models added, the retired and suspended ones taken out, and each model's details for `GET /v1/models`.

Two sources of truth feed it: the configuration (shipped registry + LLMAGG_CONFIG), always there, and
the discovery service's catalogue when the router follows it. The catalogue can add models to a
configured provider, change their facts, and withdraw them; it cannot add a provider the router has
no base URL and protocol for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from llmagg.registry import Model, Provider

RETIRED = "retired"
SUSPENDED = "suspended"
ACTIVE = "active"


@dataclass(frozen=True)
class Withdrawal:
    state: str  # retired | suspended
    reason: str


@dataclass(frozen=True)
class ModelDetails:
    """What `GET /v1/models` shows of a model beyond its id."""

    limits: Mapping[str, float] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    expiration_date: str = ""
    source: str = "registry"  # registry | discovery


@dataclass(frozen=True)
class DiscoveredModel:
    """One entry of the discovery service's catalogue, as the router reads it."""

    provider: str
    model: str
    state: str  # active | unconfirmed | suspended | retired
    reason: str = ""
    name: str = ""
    type: str = "chat"
    free: bool = True
    context_length: int = 0
    quality: int = 3
    aliases: tuple[str, ...] = ()
    limits: Mapping[str, float] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    expiration_date: str = ""


@dataclass(frozen=True)
class DiscoveredProvider:
    id: str
    state: str
    reason: str = ""
    limits: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CatalogView:
    providers: Mapping[str, Provider]  # routable ones, each with its routable models only
    withdrawn_providers: Mapping[str, Withdrawal] = field(default_factory=dict)
    withdrawn_models: Mapping[tuple[str, str], Withdrawal] = field(default_factory=dict)
    details: Mapping[tuple[str, str], ModelDetails] = field(default_factory=dict)

    def withdrawn(self, provider: str, model: str) -> Withdrawal | None:
        return self.withdrawn_providers.get(provider) or self.withdrawn_models.get((provider, model))


def _retirement(on: str, reason: str) -> Withdrawal:
    return Withdrawal(RETIRED, f"retired on {on}" + (f": {reason}" if reason else ""))


def registry_view(configured: Mapping[str, Provider]) -> CatalogView:
    """The configuration alone: what the registry retired is withdrawn, the rest is routable."""
    providers: dict[str, Provider] = {}
    gone_providers: dict[str, Withdrawal] = {}
    gone_models: dict[tuple[str, str], Withdrawal] = {}
    details: dict[tuple[str, str], ModelDetails] = {}
    for pid, provider in configured.items():
        if provider.retired_on:
            gone_providers[pid] = _retirement(provider.retired_on, provider.retired_reason)
            continue
        kept = []
        for model in provider.models:
            if model.retired_on:
                gone_models[(pid, model.id)] = _retirement(model.retired_on, model.retired_reason)
                continue
            kept.append(model)
            details[(pid, model.id)] = ModelDetails(limits={**provider.limits, **model.limits})
        providers[pid] = replace(provider, models=tuple(kept))
    return CatalogView(providers, gone_providers, gone_models, details)


def _updated(model: Model, entry: DiscoveredModel) -> Model:
    return replace(
        model,
        type=entry.type if entry.type in ("chat", "embedding") else model.type,
        context_window=entry.context_length or model.context_window,
        quality=entry.quality or model.quality,
        aliases=tuple(dict.fromkeys((*model.aliases, *entry.aliases))),
        free=entry.free,
        name=entry.name or model.name,
        limits=dict(entry.limits) or model.limits,
    )


def _discovered(entry: DiscoveredModel) -> Model:
    return Model(
        id=entry.model,
        type=entry.type,  # "other" (audio, guard, ...) models are listed but never match chat or embeddings
        context_window=entry.context_length or 8192,
        quality=entry.quality or 3,
        aliases=entry.aliases,
        free=entry.free,
        name=entry.name,
        limits=dict(entry.limits),
    )


def discovered_view(
    configured: Mapping[str, Provider],
    models: Iterable[DiscoveredModel],
    providers: Iterable[DiscoveredProvider] = (),
) -> CatalogView:
    """The configuration with the discovery service's catalogue applied."""
    base = registry_view(configured)
    gone_providers = dict(base.withdrawn_providers)
    for entry in providers:
        if entry.id in configured and entry.state == RETIRED:
            gone_providers[entry.id] = Withdrawal(RETIRED, entry.reason or "retired")
    by_provider: dict[str, dict[str, DiscoveredModel]] = {}
    for entry in models:
        if entry.provider in configured:
            by_provider.setdefault(entry.provider, {})[entry.model] = entry
    provider_limits = {entry.id: dict(entry.limits) for entry in providers}
    routable: dict[str, Provider] = {}
    gone_models = dict(base.withdrawn_models)
    details = dict(base.details)
    for pid, provider in base.providers.items():
        if pid in gone_providers:
            continue
        entries = by_provider.get(pid, {})
        kept: list[Model] = []
        for model in provider.models:
            entry = entries.pop(model.id, None)
            if entry is not None and entry.state in (RETIRED, SUSPENDED):
                gone_models[(pid, model.id)] = Withdrawal(entry.state, entry.reason or entry.state)
                continue
            kept.append(_updated(model, entry) if entry is not None else model)
            if entry is not None:
                details[(pid, model.id)] = _details(entry, provider_limits.get(pid))
        for entry in entries.values():  # discovered, not configured
            if entry.state in (RETIRED, SUSPENDED):
                gone_models[(pid, entry.model)] = Withdrawal(entry.state, entry.reason or entry.state)
            elif entry.state == ACTIVE:
                kept.append(_discovered(entry))
                details[(pid, entry.model)] = _details(entry, provider_limits.get(pid))
        routable[pid] = replace(provider, models=tuple(kept))
    for pid in gone_providers:
        routable.pop(pid, None)
    return CatalogView(routable, gone_providers, gone_models, details)


def _details(entry: DiscoveredModel, provider_limits: Mapping[str, float] | None) -> ModelDetails:
    return ModelDetails(
        limits={**(provider_limits or {}), **entry.limits},
        capabilities=entry.capabilities,
        expiration_date=entry.expiration_date,
        source="discovery",
    )


class StaticCatalog:
    """The CatalogSource of the configuration alone (ROUTER_CATALOG=registry): it never changes."""

    generation = 0

    def __init__(self, configured: Mapping[str, Provider]) -> None:
        self._view = registry_view(configured)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def view(self) -> CatalogView:
        return self._view
