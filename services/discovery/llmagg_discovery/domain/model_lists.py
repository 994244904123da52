"""Providers' own model lists (one parser per shape) -> what each says of its models.

Every parser refuses what is not a listing of the expected shape (SourceError): a source that
returns garbage must change nothing, not empty a provider.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from llmagg_discovery.domain.ports import SourceError
from llmagg_discovery.domain.records import AccountStatus, ModelFacts, Pricing

# OpenRouter's free-model request limits: 50 a day, 1,000 once $10 of credits were ever bought.
OPENROUTER_FREE_LIMITS = {"rpm": 20.0, "rpd": 50.0}
OPENROUTER_TOPPED_UP_LIMITS = {"rpm": 20.0, "rpd": 1000.0}


@dataclass(frozen=True)
class Page:
    models: dict[str, ModelFacts]
    next_token: str | None = None  # where the next page starts (None: this was the last)


def _items(payload: Any, key: str) -> list[dict[str, Any]]:
    items = payload.get(key) if isinstance(payload, Mapping) else payload if key == "" else None
    if not isinstance(items, list):
        raise SourceError(f"not a model list: expected {'a list' if not key else repr(key) + ' holding a list'}")
    return [item for item in items if isinstance(item, Mapping)]


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _kind(kind: Any) -> str | None:
    """The `type` some OpenAI-style lists carry (Together: chat, language, code, embedding, image, ...)."""
    if not isinstance(kind, str) or not kind:
        return None
    if kind == "embedding":
        return "embedding"
    return "chat" if kind in ("chat", "language", "code") else "other"


def openai_models(payload: Any) -> Page:
    """`GET {base}/models`: {object: list, data: [{id, ...}]} (a bare list too, as Together sends)."""
    items = _items(payload, "") if isinstance(payload, list) else _items(payload, "data")
    models: dict[str, ModelFacts] = {}
    for item in items:
        model_id = _text(item.get("id"))
        if model_id is None:
            continue
        context = next(
            (
                _positive_int(item.get(k))
                for k in ("context_window", "context_length", "max_context_length")
                if k in item
            ),
            None,
        )
        kind = item.get("type")
        models[model_id] = ModelFacts(
            name=_text(item.get("display_name")),
            context_length=context,
            type=_kind(kind),
        )
    return Page(models)


def _openrouter_free(model_id: str, pricing: Pricing | None) -> bool:
    return model_id.endswith(":free") or (pricing is not None and pricing.free)


def openrouter_models(payload: Any, known: Collection[str] = ()) -> Page:
    """`GET /api/v1/models`: the free ones (`:free` ids, prices "0"), and the known ones whatever their price."""
    models: dict[str, ModelFacts] = {}
    for item in _items(payload, "data"):
        model_id = _text(item.get("id"))
        if model_id is None:
            continue
        raw_pricing = item.get("pricing") if isinstance(item.get("pricing"), Mapping) else {}
        pricing = (
            Pricing(str(raw_pricing.get("prompt", "")), str(raw_pricing.get("completion", ""))) if raw_pricing else None
        )
        free = _openrouter_free(model_id, pricing)
        if not free and model_id not in known:
            continue  # a paid model: not for a free-tier catalogue
        top = item.get("top_provider") if isinstance(item.get("top_provider"), Mapping) else {}
        parameters = item.get("supported_parameters")
        capabilities = [p for p in parameters if isinstance(p, str)] if isinstance(parameters, list) else []
        architecture = item.get("architecture") if isinstance(item.get("architecture"), Mapping) else {}
        if "image" in (architecture.get("input_modalities") or ()):
            capabilities.append("vision")
        models[model_id] = ModelFacts(
            name=_text(item.get("name")),
            free=free,
            context_length=_positive_int(item.get("context_length")) or _positive_int(top.get("context_length")),
            capabilities=tuple(capabilities) or None,
            expiration_date=_text(item.get("expiration_date")),
            pricing=pricing,
        )
    return Page(models)


def openrouter_key(payload: Any, alias: str, now: float) -> AccountStatus:
    """`GET /api/v1/key`: whether the account is on the free tier (50 free requests a day) or topped up (1,000)."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(data.get("is_free_tier"), bool):
        raise SourceError("not an OpenRouter key answer: expected data.is_free_tier")
    free_tier = data["is_free_tier"]

    def amount(name: str) -> float | None:
        value = data.get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    return AccountStatus(
        alias=alias,
        free_tier=free_tier,
        limits=dict(OPENROUTER_FREE_LIMITS if free_tier else OPENROUTER_TOPPED_UP_LIMITS),
        usage_usd=amount("usage") or 0.0,
        limit_usd=amount("limit"),
        limit_remaining_usd=amount("limit_remaining"),
        checked_at=now,
    )


def gemini_models(payload: Any) -> Page:
    """`GET v1beta/models`: {models: [{name: models/x, displayName, inputTokenLimit, supportedGenerationMethods}]}."""
    models: dict[str, ModelFacts] = {}
    for item in _items(payload, "models"):
        name = _text(item.get("name"))
        if name is None:
            continue
        methods = [m for m in item.get("supportedGenerationMethods") or () if isinstance(m, str)]
        embeds = "embedContent" in methods and "generateContent" not in methods
        models[name.removeprefix("models/")] = ModelFacts(
            name=_text(item.get("displayName")),
            type="embedding" if embeds else "chat",
            context_length=_positive_int(item.get("inputTokenLimit")),
            capabilities=tuple(methods) or None,
        )
    token = payload.get("nextPageToken") if isinstance(payload, Mapping) else None
    return Page(models, token if isinstance(token, str) and token else None)


def anthropic_models(payload: Any) -> Page:
    """`GET /v1/models`: {data: [{id, display_name, max_input_tokens?}], has_more, last_id}."""
    models = {
        item["id"]: ModelFacts(
            name=_text(item.get("display_name")),
            type="chat",
            context_length=_positive_int(item.get("max_input_tokens")),
        )
        for item in _items(payload, "data")
        if _text(item.get("id"))
    }
    more = isinstance(payload, Mapping) and payload.get("has_more") is True
    last = payload.get("last_id") if isinstance(payload, Mapping) else None
    return Page(models, last if more and isinstance(last, str) and last else None)


def cohere_models(payload: Any) -> Page:
    """`GET /v1/models`: {models: [{name, endpoints, context_length, features}], next_page_token}."""
    models: dict[str, ModelFacts] = {}
    for item in _items(payload, "models"):
        name = _text(item.get("name"))
        if name is None:
            continue
        endpoints = [e for e in item.get("endpoints") or () if isinstance(e, str)]
        embeds = "embed" in endpoints and "chat" not in endpoints
        features = [f for f in item.get("features") or () if isinstance(f, str)]
        models[name] = ModelFacts(
            type="embedding" if embeds else "chat",
            context_length=_positive_int(item.get("context_length")),
            capabilities=tuple(features) or None,
        )
    token = payload.get("next_page_token") if isinstance(payload, Mapping) else None
    return Page(models, token if isinstance(token, str) and token else None)
