"""Invariants of the shipped provider registry: the raw YAML is strict, and the loader accepts it."""

import re
from collections import defaultdict

import pytest
import yaml

from router.domain.registry import AUTH_STYLES, MODEL_TYPES, PROTOCOLS, TIERS, merge_providers
from router.settings import SHIPPED_REGISTRY

REGISTRY = SHIPPED_REGISTRY

# Every provider of the README's free and trial lists and of the community list, plus BYOK providers.
LISTED_PROVIDERS = {
    "openrouter", "google-ai-studio", "nvidia-nim", "mistral", "codestral", "huggingface", "vercel",
    "opencode-zen", "cerebras", "groq", "cohere", "github-models", "cloudflare", "chutes", "vertex-ai",
    "together", "fireworks", "unify", "baseten", "nebius", "novita", "ai21", "upstage", "nlp-cloud",
    "alibaba", "modal", "inference-net", "hyperbolic", "sambanova", "scaleway", "anthropic", "openai",
    "deepinfra",
}  # fmt: skip


PROVIDER_REQUIRED = {
    "id": str, "name": str, "protocol": str, "base_url": str, "auth": str, "tier": str, "speed": int,
    "docs_url": str, "models": list,
}  # fmt: skip
PROVIDER_OPTIONAL = {"shared_quota": bool, "limits": dict, "notes": str, "drop_params": list}
MODEL_REQUIRED = {"id": str, "type": str, "context_window": int, "quality": int}
MODEL_OPTIONAL = {"name": str, "aliases": list, "limits": dict, "free": bool}

INTEGER_LIMITS = {"rpm", "rph", "rpd", "rpmonth", "tpm", "tph", "tpd", "tpmonth", "neurons_per_day"}
NUMBER_LIMITS = {"credits_usd"}
PLACEHOLDERS = {"account_id", "project", "location", "workspace", "app"}

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
ALIAS = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@pytest.fixture(scope="module")
def providers() -> list[dict]:
    data = yaml.safe_load(REGISTRY.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and set(data) == {"providers"}
    assert isinstance(data["providers"], list) and data["providers"]
    return data["providers"]


def _models(providers):
    for provider in providers:
        for model in provider["models"]:
            yield provider, model


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has_type(value, expected: type) -> bool:
    return _is_int(value) if expected is int else isinstance(value, expected)


def test_the_file_is_a_single_providers_list_of_mappings(providers):
    assert all(isinstance(p, dict) for p in providers)
    assert all(isinstance(m, dict) for _, m in _models(providers))


def test_every_provider_has_the_required_keys_with_the_right_types(providers):
    for provider in providers:
        where = provider.get("id")
        for key, expected in PROVIDER_REQUIRED.items():
            assert key in provider, (where, key)
            assert _has_type(provider[key], expected), (where, key, provider[key])
        for key, expected in PROVIDER_OPTIONAL.items():
            if key in provider:
                assert _has_type(provider[key], expected), (where, key, provider[key])


def test_every_model_has_the_required_keys_with_the_right_types(providers):
    for provider, model in _models(providers):
        where = (provider["id"], model.get("id"))
        for key, expected in MODEL_REQUIRED.items():
            assert key in model, (where, key)
            assert _has_type(model[key], expected), (where, key, model[key])
        for key, expected in MODEL_OPTIONAL.items():
            if key in model:
                assert _has_type(model[key], expected), (where, key, model[key])


def test_no_unknown_keys_and_no_null_or_empty_values(providers):
    for provider in providers:
        assert set(provider) <= set(PROVIDER_REQUIRED) | set(PROVIDER_OPTIONAL), provider["id"]
        assert all(value is not None and value != "" for value in provider.values()), provider["id"]
    for provider, model in _models(providers):
        assert set(model) <= set(MODEL_REQUIRED) | set(MODEL_OPTIONAL), (provider["id"], model["id"])
        assert all(value is not None and value != "" for value in model.values()), (provider["id"], model["id"])


def test_provider_ids_are_unique_slugs(providers):
    ids = [p["id"] for p in providers]
    assert all(SLUG.match(i) for i in ids), [i for i in ids if not SLUG.match(i)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_model_ids_are_unique_within_each_provider(providers):
    for provider in providers:
        ids = [m["id"] for m in provider["models"]]
        assert len(ids) == len(set(ids)), (provider["id"], sorted(i for i in ids if ids.count(i) > 1))
        assert all(i == i.strip() and " " not in i for i in ids), provider["id"]


def test_protocol_auth_and_tier_are_from_the_allowed_sets(providers):
    for provider in providers:
        assert provider["protocol"] in PROTOCOLS, provider["id"]
        assert provider["auth"] in AUTH_STYLES, provider["id"]
        assert provider["tier"] in TIERS, provider["id"]


def test_model_types_are_chat_or_embedding(providers):
    for provider, model in _models(providers):
        assert model["type"] in MODEL_TYPES, (provider["id"], model["id"])


def test_quality_and_speed_are_integers_from_1_to_5(providers):
    for provider in providers:
        assert 1 <= provider["speed"] <= 5, provider["id"]
    for provider, model in _models(providers):
        assert 1 <= model["quality"] <= 5, (provider["id"], model["id"])


def test_context_windows_are_positive_integers(providers):
    for provider, model in _models(providers):
        assert _is_int(model["context_window"]) and model["context_window"] > 0, (provider["id"], model["id"])


def test_limits_use_known_keys_with_positive_values(providers):
    blocks = [(p["id"], p["limits"]) for p in providers if "limits" in p]
    blocks += [((p["id"], m["id"]), m["limits"]) for p, m in _models(providers) if "limits" in m]
    for where, limits in blocks:
        assert limits, f"{where}: write no `limits` rather than an empty one"
        assert set(limits) <= INTEGER_LIMITS | NUMBER_LIMITS, (where, set(limits) - INTEGER_LIMITS - NUMBER_LIMITS)
        for key, value in limits.items():
            if key in INTEGER_LIMITS:
                assert _is_int(value), (where, key, value)
            else:
                assert isinstance(value, int | float) and not isinstance(value, bool), (where, key, value)
            assert value > 0, (where, key, value)


def test_base_urls_are_https_without_a_trailing_slash(providers):
    for provider in providers:
        url = provider["base_url"]
        assert url.startswith("https://"), provider["id"]
        assert not url.endswith("/"), provider["id"]
        assert " " not in url, provider["id"]


def test_base_url_placeholders_are_known_and_explained_in_notes(providers):
    for provider in providers:
        names = PLACEHOLDER.findall(provider["base_url"])
        assert set(names) <= PLACEHOLDERS, (provider["id"], names)
        for name in names:
            assert name in provider.get("notes", ""), f"{provider['id']}: notes should say how to set `{name}`"


def test_docs_urls_are_https(providers):
    for provider in providers:
        assert provider["docs_url"].startswith("https://"), provider["id"]


def test_every_listed_provider_is_present(providers):
    missing = LISTED_PROVIDERS - {p["id"] for p in providers}
    assert not missing, sorted(missing)


def test_every_provider_lists_at_least_one_chat_model(providers):
    for provider in providers:
        assert any(m["type"] == "chat" for m in provider["models"]), provider["id"]


def test_aliases_are_lowercase_and_not_repeated_on_one_model(providers):
    for provider, model in _models(providers):
        if "aliases" not in model:
            continue
        aliases = model["aliases"]
        assert aliases, f"{provider['id']}/{model['id']}: write no `aliases` rather than an empty list"
        for alias in aliases:
            assert isinstance(alias, str) and ALIAS.match(alias), (provider["id"], model["id"], alias)
        assert len(aliases) == len(set(aliases)), (provider["id"], model["id"])


def test_no_alias_names_a_chat_model_on_one_provider_and_an_embedding_model_on_another(providers):
    kinds = defaultdict(set)
    for _, model in _models(providers):
        for alias in model.get("aliases", []):
            kinds[alias].add(model["type"])
    mixed = {alias: types for alias, types in kinds.items() if len(types) > 1}
    assert not mixed, mixed


def test_a_free_flag_only_appears_where_it_changes_the_default(providers):
    for provider, model in _models(providers):
        if "free" in model:
            assert model["free"] != (provider["tier"] == "free"), (provider["id"], model["id"])


def test_several_aliases_are_shared_by_two_or_more_providers(providers):
    serving = defaultdict(set)
    for provider, model in _models(providers):
        if model["type"] == "chat":
            for alias in model.get("aliases", []):
                serving[alias].add(provider["id"])
    shared = {alias for alias, ids in serving.items() if len(ids) >= 2}
    assert len(shared) >= 10, sorted(shared)
    for alias in ("llama-3.3-70b", "llama-3.1-8b", "gpt-oss-120b", "deepseek-v3", "qwen3-coder"):
        assert len(serving[alias]) >= 3, (alias, sorted(serving[alias]))


def test_the_router_loads_it_and_popular_models_have_three_free_providers(providers):
    loaded = merge_providers(providers, [])
    serving = defaultdict(set)
    for provider in loaded.values():
        for model in provider.models:
            if model.free and model.type == "chat":
                for alias in model.aliases:
                    serving[alias].add(provider.id)
    for alias in ("llama-3.3-70b", "llama-3.1-8b", "gpt-oss-120b", "deepseek-v3", "qwen3-coder"):
        assert len(serving[alias]) >= 3, (alias, sorted(serving[alias]))
