"""The provider registry shipped as data: complete, loadable, and useful for fallback."""

from collections import defaultdict

import pytest
import yaml

from router.domain.registry import merge_providers
from router.settings import SHIPPED_REGISTRY

# The free and trial lists of the product README and the community list, plus BYOK providers.
EXPECTED = {
    "openrouter", "google-ai-studio", "nvidia-nim", "mistral", "codestral", "huggingface", "vercel",
    "opencode-zen", "cerebras", "groq", "cohere", "github-models", "cloudflare", "chutes", "vertex-ai",
    "together", "fireworks", "unify", "baseten", "nebius", "novita", "ai21", "upstage", "nlp-cloud",
    "alibaba", "modal", "inference-net", "hyperbolic", "sambanova", "scaleway", "openai", "anthropic",
    "deepinfra",
}  # fmt: skip


@pytest.fixture(scope="module")
def providers():
    raw = yaml.safe_load(SHIPPED_REGISTRY.read_text())["providers"]
    return merge_providers(raw, [])


def test_every_listed_provider_is_shipped(providers):
    assert set(providers) >= EXPECTED


def test_base_urls_are_https_and_unslashed(providers):
    for provider in providers.values():
        assert provider.base_url.startswith("https://"), provider.id
        assert not provider.base_url.endswith("/"), provider.id


def test_every_provider_but_bring_your_own_deployment_lists_a_chat_model(providers):
    for provider in providers.values():
        if provider.id != "modal":
            assert any(m.type == "chat" for m in provider.models), provider.id


def test_limits_use_known_keys_with_positive_values(providers):
    allowed = {"rpm", "rph", "rpd", "rpmonth", "tpm", "tph", "tpd", "tpmonth", "credits_usd", "neurons_per_day"}
    for provider in providers.values():
        for limits in [provider.limits, *(m.limits for m in provider.models)]:
            assert set(limits) <= allowed, provider.id
            assert all(value > 0 for value in limits.values()), provider.id


def test_an_alias_never_mixes_chat_and_embedding_models(providers):
    kinds = defaultdict(set)
    for provider in providers.values():
        for model in provider.models:
            for alias in model.aliases:
                kinds[alias].add(model.type)
    assert all(len(types) == 1 for types in kinds.values()), {a: t for a, t in kinds.items() if len(t) > 1}


def test_popular_models_can_fall_over_across_several_free_providers(providers):
    serving = defaultdict(set)
    for provider in providers.values():
        for model in provider.models:
            for alias in model.aliases:
                if model.free:
                    serving[alias].add(provider.id)
    for alias in ("llama-3.3-70b", "llama-3.1-8b", "gpt-oss-120b", "deepseek-v3", "qwen3-coder"):
        assert len(serving[alias]) >= 3, (alias, serving[alias])


def test_trial_and_paid_models_are_not_marked_free_unless_said(providers):
    for provider in providers.values():
        if provider.tier != "free":
            assert [m.id for m in provider.models if m.free] in ([], ["meta-llama/Llama-3.3-70B-Instruct-Turbo-Free"])
