"""The provider registry: the loader's schema refuses malformed entries, and the shipped file passes it whole."""

from __future__ import annotations

from collections import defaultdict

import pytest

from llmagg.registry import SHIPPED_REGISTRY, RegistryError, load_registry, merge_providers, registry_entries

# Every provider of the README's free and trial lists and of the community list, plus BYOK providers.
LISTED_PROVIDERS = {
    "openrouter", "google-ai-studio", "nvidia-nim", "mistral", "codestral", "huggingface", "vercel",
    "opencode-zen", "cerebras", "groq", "cohere", "github-models", "cloudflare", "chutes", "vertex-ai",
    "together", "fireworks", "unify", "baseten", "nebius", "novita", "ai21", "upstage", "nlp-cloud",
    "alibaba", "modal", "inference-net", "hyperbolic", "sambanova", "scaleway", "anthropic", "openai",
    "deepinfra",
}  # fmt: skip
POPULAR_ALIASES = ("llama-3.3-70b", "llama-3.1-8b", "gpt-oss-120b", "qwen3-coder")

COMPLETE_PROVIDER = {
    "id": "acme", "name": "Acme", "protocol": "openai", "base_url": "https://api.acme.example/v1", "auth": "bearer",
    "tier": "free", "speed": 3, "docs_url": "https://acme.example/docs",
    "models": [{"id": "acme-1", "type": "chat", "context_window": 8192, "quality": 2}],
}  # fmt: skip


@pytest.fixture(scope="module")
def shipped():
    return load_registry(SHIPPED_REGISTRY, complete=True)


def with_provider(**changes):
    return [{**COMPLETE_PROVIDER, **changes}]


def with_model(**changes):
    return with_provider(models=[{**COMPLETE_PROVIDER["models"][0], **changes}])


# --- the schema ----------------------------------------------------------------------------------


def test_a_complete_entry_loads_with_every_field():
    [provider] = merge_providers(with_provider(limits={"rpm": 30, "credits_usd": 0.5}), complete=True).values()
    assert (provider.id, provider.speed, provider.limits, provider.models[0].free) == (
        "acme",
        3,
        {"rpm": 30, "credits_usd": 0.5},
        True,
    )


def test_capabilities_left_out_are_unknown_and_an_empty_list_means_none():
    def model(**changes):
        return next(iter(merge_providers(with_model(**changes), complete=True).values())).models[0]

    assert model().capabilities is None
    assert model(capabilities=[]).capabilities == frozenset()
    assert model(capabilities=["tools", "vision"], max_output_tokens=8192).capabilities == {"tools", "vision"}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (with_provider(sped=3), r"unknown fields \['sped'\]"),
        (with_model(qualty=3), r"unknown fields \['qualty'\]"),
        (with_provider(speed="fast"), r"speed must be an integer from 1 to 5"),
        (with_provider(speed=True), r"speed must be an integer"),
        (with_model(quality=9), r"quality must be an integer from 1 to 5"),
        (with_model(context_window=0), r"context_window must be an integer of at least 1"),
        (with_provider(protocol="smoke"), r"protocol must be one of"),
        (with_provider(auth="basic"), r"auth must be one of"),
        (with_provider(tier="forever"), r"tier must be one of"),
        (with_model(type="image"), r"type must be one of"),
        (with_provider(id="Acme AI"), r"id must be lowercase letters"),
        (with_provider(name=""), r"name must be a non-empty string"),
        (with_provider(base_url="ftp://acme.example"), r"base_url must be an http\(s\) URL"),
        (with_provider(base_url="https://acme.example/{Tenant}/v1"), r"placeholders \['Tenant'\] must be lowercase"),
        (with_provider(limits={"rps": 1}), r"unknown limits \['rps'\]"),
        (with_provider(limits={"rpm": 1.5}), r"limits.rpm must be a positive integer"),
        (with_provider(limits={"rpd": -1}), r"limits.rpd must be a positive integer"),
        (with_provider(limits={"credits_usd": "5"}), r"limits.credits_usd must be a positive number"),
        (with_model(aliases=["llama 70b"]), r"are not aliases"),
        (with_model(aliases=["x", "X"]), r"repeats an alias"),
        (with_model(free="yes"), r"free must be true or false"),
        (with_provider(drop_params=[""]), r"drop_params must be a non-empty list of field names"),
        (with_model(capabilities=["tools", "telepathy"]), r"unknown capabilities \['telepathy'\]"),
        (with_model(capabilities="tools"), r"capabilities must be a list"),
        (with_model(max_output_tokens=0), r"max_output_tokens must be an integer of at least 1"),
        (with_provider(models=[COMPLETE_PROVIDER["models"][0]] * 2), r"models \['acme-1'\] are listed twice"),
        (with_provider() * 2, r"provider 'acme' is listed twice"),
        (with_provider(retired_on="last July"), r"retired_on must be a date"),
        (with_model(retired_on="2026-13"), r"retired_on must be a date"),
        (with_provider(retired_reason="gone"), r"`retired_reason` needs `retired_on`"),
        (with_provider(models_api="graphql"), r"models_api must be one of"),
        (with_provider(free_tier_ended_on=2026), r"free_tier_ended_on must be a date"),
    ],
)
def test_the_loader_refuses_a_malformed_entry_and_names_it(entries, message):
    with pytest.raises(RegistryError, match=message):
        merge_providers(entries)


@pytest.mark.parametrize("field", ["name", "protocol", "auth", "tier", "speed", "docs_url", "models"])
def test_a_shipped_entry_must_write_out_every_field(field):
    entry = {k: v for k, v in COMPLETE_PROVIDER.items() if k != field}
    with pytest.raises(RegistryError, match=f"missing `{field}`"):
        merge_providers([entry], complete=True)
    merge_providers([entry] if field != "models" else [{**entry, "models": []}])  # the user's entries may


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"notes": None}, r"notes is empty \(leave it out instead\)"),
        ({"limits": {}}, r"limits must be a non-empty mapping"),
        ({"base_url": "https://acme.example/{tenant}/v1"}, r"unknown placeholders \['tenant'\]"),
        ({"models": [{**COMPLETE_PROVIDER["models"][0], "aliases": []}]}, r"aliases must be a non-empty list"),
    ],
)
def test_a_shipped_entry_writes_no_empty_field_and_only_known_placeholders(changes, message):
    with pytest.raises(RegistryError, match=message):
        merge_providers(with_provider(**changes), complete=True)
    merge_providers(with_provider(**changes))  # a user's entry may: empty means the default


@pytest.mark.parametrize("field", ["type", "context_window", "quality"])
def test_a_shipped_model_must_write_out_every_field(field):
    model = {k: v for k, v in COMPLETE_PROVIDER["models"][0].items() if k != field}
    with pytest.raises(RegistryError, match=f"missing `{field}`"):
        merge_providers(with_provider(models=[model]), complete=True)


def test_user_entries_override_fields_of_a_registry_entry_and_add_providers():
    merged = merge_providers(
        with_provider(), [{"id": "acme", "speed": 1}, {"id": "mine", "base_url": "http://127.0.0.1:1/v1"}]
    )
    assert merged["acme"].speed == 1 and merged["acme"].models[0].id == "acme-1"
    assert merged["mine"].protocol == "openai" and merged["mine"].auth == "bearer"


def test_the_registry_file_must_hold_one_providers_list(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("providers: []\nextra: 1\n")
    with pytest.raises(RegistryError, match="one key, `providers`"):
        registry_entries(path)


# --- the shipped registry ------------------------------------------------------------------------


def test_the_shipped_registry_passes_the_schema_with_every_field_written_out(shipped):
    assert len(shipped) == len(registry_entries())


def test_every_listed_provider_is_present(shipped):
    assert not LISTED_PROVIDERS - set(shipped), sorted(LISTED_PROVIDERS - set(shipped))


def test_base_and_docs_urls_are_https(shipped):
    assert [p.id for p in shipped.values() if not p.base_url.startswith("https://")] == []
    assert [p.id for p in shipped.values() if not p.docs_url.startswith("https://")] == []


def test_base_url_placeholders_are_explained_in_notes(shipped):
    for provider in shipped.values():
        for name in provider.placeholders:
            assert name in provider.notes, f"{provider.id}: notes should say how to set `{name}`"


def test_every_provider_lists_at_least_one_chat_model(shipped):
    assert [p.id for p in shipped.values() if not any(m.type == "chat" for m in p.models)] == []


def test_no_alias_names_a_chat_model_on_one_provider_and_an_embedding_model_on_another(shipped):
    kinds = defaultdict(set)
    for provider in shipped.values():
        for model in provider.models:
            for alias in model.aliases:
                kinds[alias].add(model.type)
    assert {alias: types for alias, types in kinds.items() if len(types) > 1} == {}


def test_a_free_flag_is_only_written_where_it_changes_the_default():
    for entry in registry_entries():
        for model in entry["models"]:
            if "free" in model:
                assert model["free"] != (entry["tier"] == "free"), (entry["id"], model["id"])


def test_popular_models_have_three_free_providers_and_many_aliases_are_shared(shipped):
    serving = defaultdict(set)
    for provider in shipped.values():
        if provider.retired:
            continue
        for model in provider.models:
            if model.free and model.type == "chat":
                for alias in model.aliases:
                    serving[alias].add(provider.id)
    assert len([alias for alias, ids in serving.items() if len(ids) >= 2]) >= 10
    for alias in POPULAR_ALIASES:
        assert len(serving[alias]) >= 3, (alias, sorted(serving[alias]))


def test_github_models_is_retired_since_its_api_answers_410(shipped):
    github = shipped["github-models"]
    assert (github.retired_on, github.retired) == ("2026-07-30", True)
    assert "410" in github.retired_reason


def test_sambanova_free_tier_ended_in_august_2026(shipped):
    sambanova = shipped["sambanova"]
    assert (sambanova.tier, sambanova.free_tier_ended_on) == ("paid", "2026-08")
    assert "credits_usd" not in sambanova.limits and not any(m.free for m in sambanova.models)


def test_each_provider_says_how_its_models_are_listed(shipped):
    apis = {pid: p.listing_api for pid, p in shipped.items()}
    assert (apis["openrouter"], apis["google-ai-studio"], apis["cohere"], apis["anthropic"]) == (
        "openrouter",
        "gemini",
        "cohere",
        "anthropic",
    )
    assert (apis["groq"], apis["nlp-cloud"]) == ("openai", "none")
    assert shipped["google-ai-studio"].models_url == "https://generativelanguage.googleapis.com/v1beta/models"


def test_a_date_written_by_yaml_is_kept_as_text():
    [provider] = merge_providers(with_provider(retired_on=__import__("datetime").date(2026, 7, 30))).values()
    assert provider.retired_on == "2026-07-30"
