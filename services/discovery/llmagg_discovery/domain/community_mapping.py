"""The community list's providers and models, matched to the catalogue's ids, as a source report.

Providers match by name, by a slug of the name, or by their website's domain; a provider nobody
knows yet becomes a new (unconfirmed) one: that is how new free providers are found. Models match by
the id in their link (OpenRouter's), by id, or by display name; one that matches nothing is kept
under its listed name as an unconfirmed entry (a display name is not an id a request could use).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from llmagg.registry import Provider
from llmagg_discovery.domain.community_list import CommunityList, ListedModel, ListedProvider
from llmagg_discovery.domain.records import ModelFacts, ModelKey, ProviderFacts, SourceReport

SOURCE = "community"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_ID_LIKE = re.compile(r"^[\w@.:/-]+$")
_HOST_PREFIXES = ("www.", "app.", "console.", "cloud.", "docs.", "api.", "studio.", "build.")


def slug(text: str) -> str:
    return _NOT_SLUG.sub("-", text.lower()).strip("-")


def _folded(text: str) -> str:
    return _NOT_SLUG.sub("", text.lower())


def _domain(url: str) -> str:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    for prefix in _HOST_PREFIXES:
        if host.startswith(prefix):
            host = host[len(prefix) :]
    return ".".join(host.split(".")[-2:]) if host else ""


@dataclass(frozen=True)
class KnownModel:
    id: str
    name: str


def match_provider(listed: ListedProvider, providers: Mapping[str, Provider]) -> str | None:
    name = _folded(listed.name)
    for provider in providers.values():
        if _folded(provider.name) == name:
            return provider.id
    plain = slug(re.sub(r"\([^)]*\)", "", listed.name))
    for candidate in (slug(listed.name), plain, plain.split("-")[0]):
        if candidate in providers:
            return candidate
    domain = _domain(listed.url)
    if domain:
        for provider in providers.values():
            if domain in {_domain(provider.docs_url), _domain(provider.base_url)}:
                return provider.id
    return None


def _link_id(listed: ListedModel) -> str:
    """The model id a model page's link carries (openrouter.ai/<org>/<model>), or ""."""
    path = urllib.parse.urlsplit(listed.url).path.strip("/")
    return path if path.count("/") == 1 and _ID_LIKE.match(path) else ""


def match_model(listed: ListedModel, known: Iterable[KnownModel]) -> tuple[str, bool]:
    """(the model id, whether it is an id rather than a display name)."""
    known = list(known)
    link = _link_id(listed)
    by_id = {model.id.lower(): model.id for model in known}
    for candidate in (link, listed.name):
        if candidate and candidate.lower() in by_id:
            return by_id[candidate.lower()], True
    folded = _folded(listed.name)
    for model in known:
        if model.name and _folded(model.name) == folded:
            return model.id, True
    if link:
        return link, True
    return listed.name, not (" " in listed.name or not _ID_LIKE.match(listed.name))


def community_report(
    listing: CommunityList, providers: Mapping[str, Provider], known_models: Mapping[str, Iterable[KnownModel]]
) -> SourceReport:
    provider_facts: dict[str, ProviderFacts] = {}
    models: dict[ModelKey, ModelFacts] = {}
    for listed in listing.providers:
        provider_id = match_provider(listed, providers) or slug(listed.name)
        notes = tuple(dict.fromkeys((*listed.notes, *listed.limit_notes, *listed.requirements)))
        provider_facts[provider_id] = ProviderFacts(
            name=None if provider_id in providers else listed.name,
            tier=listed.tier if provider_id not in providers else None,
            website=listed.url or None,
            limits=None if listed.per_model_limits or not listed.limits else dict(listed.limits),
            shared_quota=True if listed.shared_quota else None,
            credits_usd=listed.credits_usd,
            credits_text=listed.credits_text or None,
            notes=notes or None,
        )
        known = list(known_models.get(provider_id, ()))
        model_limits = dict(listed.limits) if listed.per_model_limits else None
        for item in listed.models:
            model_id, is_id = match_model(item, known)
            models[ModelKey(provider_id, model_id)] = ModelFacts(
                name=item.name if item.name != model_id else None,  # an id is no name: the registry's stays
                limits=dict(item.limits) if item.limits else model_limits,
                free=True if listed.tier == "free" else None,
                display_name_only=not is_id,
            )
        if model_limits:  # `**Limits (per-model):**`: every model of the provider has them
            for model in known:
                models.setdefault(ModelKey(provider_id, model.id), ModelFacts(limits=model_limits))
    return SourceReport(
        source=SOURCE,
        providers=provider_facts,
        models=models,
        complete_for=frozenset(provider_facts),
        problems=listing.problems,
    )
