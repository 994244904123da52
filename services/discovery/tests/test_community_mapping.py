"""The community list mapped onto the shipped registry: every section finds its provider, models match by
link id, id or name, per-model limits reach every model, and the registry's corrections hold over it."""

from __future__ import annotations

import pytest

from llmagg.registry import SHIPPED_REGISTRY, load_registry
from llmagg_discovery.domain.baseline import registry_report
from llmagg_discovery.domain.catalogue import Catalogue, Policy
from llmagg_discovery.domain.community_list import parse_community_list
from llmagg_discovery.domain.community_mapping import KnownModel, community_report
from llmagg_discovery.domain.records import ModelKey, ModelState

from .helpers import SNAPSHOT

T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def registry():
    return load_registry(SHIPPED_REGISTRY)


@pytest.fixture(scope="module")
def catalogue(registry):
    catalogue = Catalogue(Policy())
    catalogue.apply(registry_report(registry), T0, record_changes=False)
    known = {}
    for key in catalogue.models:
        known.setdefault(key.provider, []).append(KnownModel(key.model, catalogue.merged_model(key).name))
    catalogue.apply(community_report(parse_community_list(SNAPSHOT.read_text()), registry, known), T0 + 1)
    return catalogue


def test_every_section_maps_to_a_registry_provider(catalogue, registry):
    assert set(catalogue.providers) == set(registry)  # no section became a provider of its own


@pytest.mark.parametrize(
    ("provider", "model", "limits"),
    [
        ("groq", "llama-3.3-70b-versatile", {"rpd": 1000, "tpm": 12000}),  # by display name
        ("groq", "openai/gpt-oss-120b", {"rpd": 1000, "tpm": 8000}),  # by id
        ("google-ai-studio", "gemini-3.5-flash", {"tpm": 250000, "rpd": 20, "rpm": 5}),
        (
            "cerebras",
            "gpt-oss-120b",
            {"rpm": 30, "tpm": 60000, "rph": 900, "tph": 1000000, "rpd": 14400, "tpd": 1000000},
        ),
        ("mistral", "mistral-small-latest", {"rpm": 60, "tpm": 500000, "tpmonth": 1000000000}),  # per-model limits
    ],
)
def test_community_limits_reach_the_registry_models(catalogue, provider, model, limits):
    merged = catalogue.merged_model(ModelKey(provider, model))
    assert (dict(merged.limits), merged.provenance["limits"], merged.state) == (limits, "community", ModelState.ACTIVE)


def test_openrouter_models_match_by_their_link_and_provider_limits_by_section(catalogue):
    merged = catalogue.merged_model(ModelKey("openrouter", "meta-llama/llama-3.3-70b-instruct:free"))
    assert "community" in merged.sources and merged.name == "Llama 3.3 70B Instruct"
    assert catalogue.merged_provider("openrouter").limits == {"rpm": 20, "rpd": 50}
    assert catalogue.merged_provider("openrouter").provenance["limits"] == "community"


def test_what_only_the_community_names_is_unconfirmed(catalogue):
    entry = catalogue.merged_model(ModelKey("groq", "canopylabs/orpheus-v1-english"))
    assert entry.state is ModelState.UNCONFIRMED and entry.sources == ("community",)


def test_the_registry_corrections_hold_over_the_older_list(catalogue):
    github = [catalogue.merged_model(key) for key in catalogue.models if key.provider == "github-models"]
    assert github and {m.state for m in github} == {ModelState.RETIRED}  # the list still shows them
    sambanova = catalogue.merged_provider("sambanova")
    assert (sambanova.tier, sambanova.credits_usd, sambanova.notes[0]) == ("paid", 0.0, "free tier ended 2026-08")
    assert catalogue.merged_provider("fireworks").credits_usd == 1.0
