"""The baseline: the shipped registry (with its corrections: retired providers and models, ended free
tiers) and the user's LLMAGG_CONFIG `providers:` entries, as two run-once sources.

The registry states every field it has; the config states only the fields the user wrote, so that
where the user says nothing the fresher sources (a provider's API, the community list) win.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmagg.registry import Model, Provider
from llmagg_discovery.domain.ports import SourceContext
from llmagg_discovery.domain.records import ModelFacts, ModelKey, ProviderFacts, SourceReport

_PROVIDER_KEYS = {  # registry field -> ProviderFacts field
    "name": "name",
    "tier": "tier",
    "base_url": "base_url",
    "protocol": "protocol",
    "docs_url": "website",
    "shared_quota": "shared_quota",
    "retired_on": "retired_on",
    "retired_reason": "retired_reason",
    "free_tier_ended_on": "free_tier_ended_on",
}
_MODEL_KEYS = {
    "name": "name",
    "type": "type",
    "free": "free",
    "context_window": "context_length",
    "quality": "quality",
    "aliases": "aliases",
    "limits": "limits",
    "retired_on": "retired_on",
    "retired_reason": "retired_reason",
}


def _provider_facts(provider: Provider, written: Sequence[str]) -> ProviderFacts:
    values: dict[str, Any] = {}
    for key, name in _PROVIDER_KEYS.items():
        if key in written:
            values[name] = getattr(provider, key) or None
    if "limits" in written:
        limits = dict(provider.limits)
        credits = limits.pop("credits_usd", None)
        values["limits"] = limits
        if credits is not None:
            values["credits_usd"] = float(credits)
    if "notes" in written and provider.notes:
        values["notes"] = (provider.notes,)
    return ProviderFacts(**values)


def _model_facts(model: Model, written: Sequence[str]) -> ModelFacts:
    values: dict[str, Any] = {}
    for key, name in _MODEL_KEYS.items():
        if key in written:
            value = getattr(model, key)
            empty = value is None or (not value and not isinstance(value, bool | int))
            values[name] = None if empty else dict(value) if key == "limits" else value
    return ModelFacts(**values)


_ALL_PROVIDER_FIELDS = (*_PROVIDER_KEYS, "limits", "notes")
_ALL_MODEL_FIELDS = tuple(_MODEL_KEYS)


def registry_report(providers: Mapping[str, Provider], source: str = "registry") -> SourceReport:
    """Every field of every provider and model of a registry."""
    return SourceReport(
        source=source,
        providers={pid: _provider_facts(p, _ALL_PROVIDER_FIELDS) for pid, p in providers.items()},
        models={
            ModelKey(pid, m.id): _model_facts(m, _ALL_MODEL_FIELDS) for pid, p in providers.items() for m in p.models
        },
    )


def config_report(entries: Sequence[Mapping[str, Any]], providers: Mapping[str, Provider]) -> SourceReport:
    """The fields the user wrote in LLMAGG_CONFIG's `providers:` (values as the merged registry has them)."""
    facts: dict[str, ProviderFacts] = {}
    models: dict[ModelKey, ModelFacts] = {}
    for entry in entries:
        provider = providers.get(str(entry.get("id")))
        if provider is None:
            continue
        facts[provider.id] = _provider_facts(provider, [k for k in entry if k != "models"])
        for raw in entry.get("models") or ():
            written = ["id"] if isinstance(raw, str) else list(raw)
            model = provider.model(raw if isinstance(raw, str) else str(raw.get("id")))
            if model is not None:
                models[ModelKey(provider.id, model.id)] = _model_facts(model, written)
    return SourceReport(source="config", providers=facts, models=models)


class RegistrySource:
    """The shipped registry: run once at start."""

    name = "registry"
    interval_s = 0.0
    timeout_s = 30.0

    def __init__(self, shipped: Mapping[str, Provider]) -> None:
        self._shipped = shipped

    async def run(self, context: SourceContext) -> SourceReport:
        return registry_report(self._shipped)


class ConfigSource:
    """The user's `providers:` entries: run once at start."""

    name = "config"
    interval_s = 0.0
    timeout_s = 30.0

    def __init__(self, entries: Sequence[Mapping[str, Any]]) -> None:
        self._entries = entries

    async def run(self, context: SourceContext) -> SourceReport:
        return config_report(self._entries, context.providers)
