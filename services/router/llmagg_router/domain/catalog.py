"""The list of models a client can route to, as `GET /v1/models` and ListModels show it."""

from __future__ import annotations

from dataclasses import dataclass

from llmagg.registry import Provider


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


def routable_models(routable: dict[str, Provider]) -> list[CatalogEntry]:
    return [
        CatalogEntry(
            id=f"{provider.id}/{model.id}",
            provider=provider.id,
            provider_model=model.id,
            type=model.type,
            context_window=model.context_window,
            quality=model.quality,
            aliases=model.aliases,
            free=model.free,
        )
        for provider in routable.values()
        for model in provider.models
    ]
