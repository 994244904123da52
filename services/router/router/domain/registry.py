"""Providers and their models: the shipped registry merged with the user's additions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = frozenset({"openai", "anthropic", "gemini", "cohere", "nlpcloud"})
AUTH_STYLES = frozenset({"bearer", "token", "x-api-key", "x-goog-api-key", "none"})
TIERS = frozenset({"free", "trial", "paid"})  # paid: bring your own key
MODEL_TYPES = frozenset({"chat", "embedding"})
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class RegistryError(ValueError):
    """The registry or the user's provider entries are malformed; the message names the entry."""


@dataclass(frozen=True)
class Model:
    id: str
    type: str = "chat"
    context_window: int = 8192
    quality: int = 3
    aliases: tuple[str, ...] = ()
    free: bool = True
    name: str = ""
    limits: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    protocol: str
    base_url: str
    auth: str = "bearer"
    tier: str = "free"
    speed: int = 3
    shared_quota: bool = False
    limits: Mapping[str, float] = field(default_factory=dict)
    models: tuple[Model, ...] = ()
    # Request fields this provider rejects; removed from the body before it is sent there.
    drop_params: frozenset[str] = frozenset()
    docs_url: str = ""
    notes: str = ""

    def model(self, model_id: str) -> Model | None:
        for model in self.models:
            if model.id == model_id:
                return model
        return None


def _require(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in entry or entry[key] in (None, ""):
        raise RegistryError(f"{where}: missing `{key}`")
    return entry[key]


def _one_of(value: str, allowed: frozenset[str], key: str, where: str) -> str:
    if value not in allowed:
        raise RegistryError(f"{where}: `{key}` must be one of {sorted(allowed)}, got {value!r}")
    return value


def _int_in(value: Any, low: int, high: int, key: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RegistryError(f"{where}: `{key}` must be an integer from {low} to {high}, got {value!r}")
    return value


def parse_model(entry: Mapping[str, Any], where: str, default_free: bool) -> Model:
    if isinstance(entry, str):
        entry = {"id": entry}
    if not isinstance(entry, Mapping):
        raise RegistryError(f"{where}: a model must be a mapping or an id string")
    model_id = str(_require(entry, "id", where))
    where = f"{where} model {model_id!r}"
    context_window = entry.get("context_window", 8192)
    if not isinstance(context_window, int) or context_window <= 0:
        raise RegistryError(f"{where}: `context_window` must be a positive integer")
    return Model(
        id=model_id,
        type=_one_of(entry.get("type", "chat"), MODEL_TYPES, "type", where),
        context_window=context_window,
        quality=_int_in(entry.get("quality", 3), 1, 5, "quality", where),
        aliases=tuple(str(a).lower() for a in entry.get("aliases") or ()),
        free=bool(entry.get("free", default_free)),
        name=str(entry.get("name", "")),
        limits=dict(entry.get("limits") or {}),
    )


def parse_provider(entry: Mapping[str, Any]) -> Provider:
    if not isinstance(entry, Mapping):
        raise RegistryError("every provider entry must be a mapping")
    provider_id = str(_require(entry, "id", "provider"))
    where = f"provider {provider_id!r}"
    if not _SLUG.match(provider_id):
        raise RegistryError(f"{where}: `id` must be lowercase letters, digits and dashes")
    tier = _one_of(entry.get("tier", "free"), TIERS, "tier", where)
    models = tuple(parse_model(m, where, default_free=tier == "free") for m in entry.get("models") or ())
    seen: set[str] = set()
    for model in models:
        if model.id in seen:
            raise RegistryError(f"{where}: model {model.id!r} is listed twice")
        seen.add(model.id)
    return Provider(
        id=provider_id,
        name=str(entry.get("name", provider_id)),
        protocol=_one_of(entry.get("protocol", "openai"), PROTOCOLS, "protocol", where),
        base_url=str(_require(entry, "base_url", where)).rstrip("/"),
        auth=_one_of(entry.get("auth", "bearer"), AUTH_STYLES, "auth", where),
        tier=tier,
        speed=_int_in(entry.get("speed", 3), 1, 5, "speed", where),
        shared_quota=bool(entry.get("shared_quota", False)),
        limits=dict(entry.get("limits") or {}),
        models=models,
        drop_params=frozenset(str(name) for name in entry.get("drop_params") or ()),
        docs_url=str(entry.get("docs_url", "")),
        notes=str(entry.get("notes", "")),
    )


def merge_providers(
    shipped: Iterable[Mapping[str, Any]], overrides: Iterable[Mapping[str, Any]]
) -> dict[str, Provider]:
    """Shipped entries, then the user's: an entry with a known id replaces the fields it gives."""
    raw: dict[str, dict[str, Any]] = {}
    for entry in shipped:
        raw[str(entry.get("id"))] = dict(entry)
    for entry in overrides:
        if not isinstance(entry, Mapping) or "id" not in entry:
            raise RegistryError("every entry under `providers:` needs an `id`")
        raw[str(entry["id"])] = {**raw.get(str(entry["id"]), {}), **entry}
    return {provider_id: parse_provider(entry) for provider_id, entry in raw.items()}
