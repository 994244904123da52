"""The router follows the catalogue: discovered models become routable at once, retired and suspended ones
stop being chosen at once, the registry's retirements hold without discovery, /v1/models shows the details."""

from __future__ import annotations

import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.discovery.v1 import discovery_pb2 as dpb
from llmagg.registry import SHIPPED_REGISTRY, load_registry
from llmagg_router import converters
from llmagg_router.adapters.config_keys import ConfigKeySource
from llmagg_router.adapters.discovery_catalog import DiscoveryCatalog
from llmagg_router.domain.catalog import routable_models
from llmagg_router.domain.catalog_view import registry_view
from llmagg_router.domain.resolver import Resolver

from .helpers import make_config


def entry(provider: str, model: str, state=dpb.MODEL_STATE_ACTIVE, **fields) -> dpb.CatalogModel:
    return dpb.CatalogModel(provider=provider, model=model, state=state, **{"type": "chat", **fields})


def catalog(*models: dpb.CatalogModel, providers=()) -> dpb.Catalog:
    return dpb.Catalog(revision=1, models=models, providers=providers)


@pytest.fixture
def followed(health, clock):
    config = make_config()
    source = DiscoveryCatalog("127.0.0.1:1", config.providers)
    resolver = Resolver(config, ConfigKeySource(config.accounts, clock=clock), health, {"openai"}, source)
    return source, resolver


def routed(resolver: Resolver, model: str, pin: str | None = None) -> list[tuple[str, str]]:
    return list(dict.fromkeys((c.provider.id, c.model_id) for c in resolver.resolve(model, pin, None).candidates))


def test_a_discovered_free_model_is_routable_as_soon_as_the_catalogue_says_so(followed):
    source, resolver = followed
    with pytest.raises(ServiceError, match="does not exist"):
        resolver.resolve("new-free:free", None, None)
    generation = resolver.generation
    source.apply(catalog(entry("fast", "new-free:free", free=True, context_length=65536, aliases=["llama-70b"])))
    assert resolver.generation != generation
    assert routed(resolver, "new-free:free") == [("fast", "new-free:free")]
    assert ("fast", "new-free:free") in routed(resolver, "llama-70b")  # its alias joins the family
    assert ("fast", "new-free:free") in routed(resolver, "auto")


@pytest.mark.parametrize(
    ("state", "kind", "code"),
    [
        (dpb.MODEL_STATE_RETIRED, ErrorKind.NOT_FOUND, "model_retired"),
        (dpb.MODEL_STATE_SUSPENDED, ErrorKind.UNAVAILABLE, "model_suspended"),
    ],
)
def test_a_withdrawn_model_stops_being_chosen_at_once_by_any_name(followed, state, kind, code):
    source, resolver = followed
    assert ("fast", "llama-70b") in routed(resolver, "llama-70b")
    source.apply(catalog(entry("fast", "llama-70b", state=state, state_reason="HTTP 410 Gone")))
    assert ("fast", "llama-70b") not in routed(resolver, "llama-70b")
    assert ("fast", "llama-70b") not in routed(resolver, "auto")
    for name, pin in (("fast/llama-70b", None), ("llama-70b", "fast")):
        with pytest.raises(ServiceError) as refused:
            routed(resolver, name, pin)
        assert (refused.value.kind, refused.value.code) == (kind, code)
        assert "HTTP 410 Gone" in refused.value.message


def test_a_retired_provider_is_refused_and_never_routed(followed):
    source, resolver = followed
    source.apply(
        catalog(providers=[dpb.CatalogProvider(id="smart", state=dpb.MODEL_STATE_RETIRED, state_reason="410")])
    )
    assert all(provider != "smart" for provider, _ in routed(resolver, "auto"))
    with pytest.raises(ServiceError) as refused:
        resolver.resolve("big-model", "smart", None)
    assert refused.value.code == "provider_retired"


def test_until_discovery_answers_the_router_routes_on_the_configuration(followed):
    source, resolver = followed
    assert source.revision == 0 and ("fast", "llama-70b") in routed(resolver, "llama-70b")


def test_without_discovery_the_registry_retirements_hold():
    view = registry_view(load_registry(SHIPPED_REGISTRY))
    assert "github-models" not in view.providers
    assert "410" in view.withdrawn_providers["github-models"].reason
    assert "sambanova" in view.providers and not any(m.free for m in view.providers["sambanova"].models)


def test_v1_models_shows_free_context_limits_capabilities_and_expiration(followed):
    source, resolver = followed
    source.apply(
        catalog(
            entry(
                "fast", "new-free:free", free=True, context_length=65536, quality=2, limits={"rpd": 50},
                capabilities=["tools"], expiration_date="2026-12-31",
            ),
            entry("fast", "whisper-large", type="other"),
        )
    )  # fmt: skip
    entries = routable_models(resolver.routable_providers, resolver.catalog.details)
    listed = {e["id"]: e for e in converters.openai_models_json(entries, [], 0)["data"]}
    new = listed["fast/new-free:free"]
    assert {k: new[k] for k in ("provider", "free", "context_length", "quality", "limits", "capabilities")} == {
        "provider": "fast", "free": True, "context_length": 65536, "quality": 2, "limits": {"rpd": 50},
        "capabilities": ["tools"],
    }  # fmt: skip
    assert new["expiration_date"] == "2026-12-31" and new["object"] == "model"
    assert "fast/whisper-large" not in listed
