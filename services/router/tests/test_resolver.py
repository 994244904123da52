import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_router.adapters.config_keys import ConfigKeySource
from llmagg_router.domain.config import build_config
from llmagg_router.domain.ports import KeyOutcome
from llmagg_router.domain.resolver import Resolver

from .helpers import ENV, make_config


def targets(resolution):
    return [(c.provider.id, c.model_id) for c in resolution.candidates]


@pytest.fixture
def resolver(make_resolver):
    return make_resolver()


def test_an_alias_spans_providers_free_first(resolver):
    found = targets(resolver.resolve("llama-70b", None, None))
    assert set(found) == {("fast", "llama-70b"), ("smart", "meta/llama-70b-instruct"), ("paid", "llama-70b")}
    assert found[-1] == ("paid", "llama-70b")  # trial credits only after the free tiers


def test_an_exact_id_comes_before_alias_matches(resolver):
    found = targets(resolver.resolve("meta/llama-70b-instruct", None, None))
    assert found[0] == ("smart", "meta/llama-70b-instruct")


def test_provider_slash_model_pins_the_provider(resolver):
    assert set(targets(resolver.resolve("fast/llama-70b", None, None))) == {("fast", "llama-70b")}


def test_provider_slash_model_keeps_slashes_in_the_model_id(resolver):
    assert targets(resolver.resolve("smart/meta/llama-70b-instruct", None, None))[0] == (
        "smart",
        "meta/llama-70b-instruct",
    )


def test_a_pinned_provider_gets_unknown_model_ids_as_given(resolver):
    assert targets(resolver.resolve("brand-new-model", "smart", None)) == [("smart", "brand-new-model")]


def test_the_provider_pin_filters_alias_matches(resolver):
    assert targets(resolver.resolve("llama-70b", "fast", None)) == [("fast", "llama-70b")] * 2


def test_fastest_prefers_fast_providers_and_small_models(resolver):
    assert targets(resolver.resolve("auto", None, "fastest"))[0] == ("fast", "llama-8b")


def test_best_quality_prefers_the_strongest_free_model(resolver):
    assert targets(resolver.resolve("auto", None, "best_quality"))[0] == ("smart", "big-model")


def test_auto_leaves_out_embedding_models_and_unsupported_protocols(resolver):
    found = targets(resolver.resolve("auto", None, None))
    assert ("smart", "embed-1") not in found
    assert all(provider != "claude" for provider, _ in found)


def test_embedding_requests_only_see_embedding_models(resolver):
    assert targets(resolver.resolve("auto", None, None, "embedding")) == [("smart", "embed-1")]


def test_a_fallback_chain_is_tried_in_its_order(make_resolver, health):
    chains = {"coding": [{"provider": "smart", "model": "big-model"}, {"provider": "fast", "model": "llama-8b"}]}
    resolver = make_resolver(make_config(chains=chains))
    assert targets(resolver.resolve("coding", None, None)) == [("smart", "big-model")] + [("fast", "llama-8b")] * 2


def test_accounts_of_a_provider_are_rotated_between_requests(resolver):
    first = [c.account.alias for c in resolver.resolve("fast/llama-8b", None, None).candidates]
    second = [c.account.alias for c in resolver.resolve("fast/llama-8b", None, None).candidates]
    assert sorted(first) == sorted(second) == ["fast-1", "fast-2"]
    assert first != second


def test_a_cooling_account_is_skipped_and_its_wait_reported(resolver, health):
    health.cool_down("fast", "fast-1", "llama-8b", 12)
    resolution = resolver.resolve("fast/llama-8b", None, None)
    assert [c.account.alias for c in resolution.candidates] == ["fast-2"]
    assert resolution.soonest_retry_s == pytest.approx(12)


def test_a_shared_quota_cools_every_model_of_the_account(resolver, health):
    health.cool_down("shared", "shared-1", "", 5)
    assert resolver.resolve("shared/b:free", None, None).candidates == ()


async def test_an_account_whose_key_was_rejected_is_skipped(health, clock):
    config = make_config()
    keys = ConfigKeySource(config.accounts, clock=clock)
    resolver = Resolver(config, keys, health, {"openai"})
    await keys.report(keys.accounts("fast")[0], KeyOutcome.REJECTED)
    assert [c.account.alias for c in resolver.resolve("fast/llama-8b", None, None).candidates] == ["fast-2"]


def test_a_cooldown_ends_when_its_time_is_up(resolver, health, clock):
    health.cool_down("fast", "fast-1", "llama-8b", 12)
    clock.now += 13
    assert len(resolver.resolve("fast/llama-8b", None, None).candidates) == 2


@pytest.mark.parametrize(
    ("model", "pin", "quality", "kind", "code"),
    [
        ("no-such-model", None, None, ErrorKind.NOT_FOUND, "model_not_found"),
        ("llama-70b", "nowhere", None, ErrorKind.NOT_FOUND, "provider_not_found"),
        ("auto", None, "cheapest", ErrorKind.INVALID_ARGUMENT, "invalid_model_quality"),
        ("claude-x", None, None, ErrorKind.UNAVAILABLE, "no_account_for_model"),
    ],
)
def test_unroutable_requests_get_a_precise_error(resolver, model, pin, quality, kind, code):
    with pytest.raises(ServiceError) as caught:
        resolver.resolve(model, pin, quality)
    assert (caught.value.kind, caught.value.code) == (kind, code)


def test_without_accounts_the_error_says_how_to_add_one(make_resolver):
    resolver = make_resolver(make_config(accounts=[]))
    with pytest.raises(ServiceError) as caught:
        resolver.resolve("auto", None, None)
    assert caught.value.code == "no_accounts_configured"
    assert "LLMAGG_CONFIG" in caught.value.message and "api_key_env" in caught.value.message
    assert caught.value.retryable is False


def test_an_unsupported_protocol_is_named_in_the_error(make_resolver):
    resolver = make_resolver(make_config())
    with pytest.raises(ServiceError, match="protocol not supported"):
        resolver.resolve("claude-x", None, None)


def test_the_resolution_cache_stays_bounded_under_arbitrary_model_ids(resolver, monkeypatch):
    import llmagg_router.domain.resolver as module

    monkeypatch.setattr(module, "_STATIC_CACHE_SIZE", 10)
    for i in range(25):
        resolver.resolve(f"fast/unlisted-{i}", None, None)
    assert len(resolver._static_cache) <= 10


def test_ties_are_broken_by_observed_latency(make_resolver, health):
    providers = [
        {"id": name, "base_url": f"https://{name}.example/v1", "speed": 4, "models": [{"id": "m", "aliases": ["same"]}]}
        for name in ("east", "west")
    ]
    accounts = [{"provider": name, "api_key_env": "KEY_A"} for name in ("east", "west")]
    resolver = make_resolver(build_config(providers, {"accounts": accounts}, ENV))
    health.record_latency("east", "m", 900.0)
    health.record_latency("west", "m", 120.0)
    assert targets(resolver.resolve("same", None, None))[0] == ("west", "m")
    health.record_latency("west", "m", 5000.0)
    health.record_latency("west", "m", 5000.0)
    assert targets(resolver.resolve("same", None, None))[0] == ("east", "m")


def test_latency_never_overrides_a_fallback_chains_order(make_resolver, health):
    chains = {"c": [{"provider": "smart", "model": "big-model"}, {"provider": "fast", "model": "llama-8b"}]}
    resolver = make_resolver(make_config(chains=chains))
    health.record_latency("smart", "big-model", 9000.0)
    assert targets(resolver.resolve("c", None, None))[0] == ("smart", "big-model")
