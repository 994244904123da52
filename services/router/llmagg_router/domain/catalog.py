"""The list of models a client can route to, as `GET /v1/models` and ListModels show it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from llmagg.registry import Provider
from llmagg_router.domain.catalog_view import ModelDetails


@dataclass(frozen=True)
class CatalogEntry:
    id: str  # `provider/model`, usable as a request's `model`
    provider: str
    provider_model: str
    type: str
    context_window: int
    quality: int
    aliases: tuple[str, ...]
    free: bool
    limits: Mapping[str, float] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    expiration_date: str = ""


_NO_DETAILS = ModelDetails()


def routable_models(
    routable: Mapping[str, Provider], details: Mapping[tuple[str, str], ModelDetails] | None = None
) -> list[CatalogEntry]:
    details = details or {}
    entries = []
    for provider in routable.values():
        for model in provider.models:
            if model.type not in ("chat", "embedding"):
                continue  # audio, guard and other models a provider lists: not routed
            more = details.get((provider.id, model.id), _NO_DETAILS)
            entries.append(
                CatalogEntry(
                    id=f"{provider.id}/{model.id}",
                    provider=provider.id,
                    provider_model=model.id,
                    type=model.type,
                    context_window=model.context_window,
                    quality=model.quality,
                    aliases=model.aliases,
                    free=model.free,
                    limits=dict(more.limits) or {**provider.limits, **model.limits},
                    capabilities=more.capabilities,
                    expiration_date=more.expiration_date,
                )
            )
    return entries
