"""OpenRouter's routing fields: `models`, the `provider` object, `:free`/`:nitro`/`:floor`, and plans
that only reach models able to do what the request asks (tools, JSON schema, answer length, prompt size)."""

import pytest

from llmagg.common.errors import ServiceError
from llmagg_router.domain.request import parse_request
from llmagg_router.domain.upstream import Operation

from .helpers import content_chunks

HI = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


@pytest.fixture
def plan(make_resolver):
    resolver = make_resolver()

    def plan(**body) -> list[tuple[str, str]]:
        request = parse_request({"messages": HI, **body}, Operation.CHAT)
        resolution = resolver.resolve(
            request.model, request.provider, request.quality, "chat", None, request.preferences
        )
        return [(c.provider.id, c.model_id) for c in resolution.candidates]

    return plan


def refused(plan, **body) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        plan(**body)
    return raised.value


FAST_70B, SMART_70B, PAID_70B = ("fast", "llama-70b"), ("smart", "meta/llama-70b-instruct"), ("paid", "llama-70b")


# --- models: an ordered fallback list ----------------------------------------------------------


def test_models_are_tried_in_the_order_listed(plan):
    assert plan(models=["big-model", "llama-8b"]) == [
        ("smart", "big-model"),
        ("fast", "llama-8b"),
        ("fast", "llama-8b"),
    ]


def test_model_goes_before_the_models_list_and_no_target_twice(plan):
    assert plan(model="llama-8b", models=["big-model", "llama-8b"]) == [
        ("fast", "llama-8b"),
        ("fast", "llama-8b"),
        ("smart", "big-model"),
    ]


def test_an_unknown_model_in_the_list_is_a_404_not_a_silent_skip(plan):
    error = refused(plan, models=["big-model", "no-such-model"])
    assert (error.code, error.param) == ("model_not_found", "model")


def test_models_must_be_a_list_of_ids(plan):
    assert refused(plan, models="big-model").code == "invalid_models"
    assert refused(plan, models=[]).code == "invalid_models"


# --- the provider object -----------------------------------------------------------------------


def test_provider_order_goes_first_then_the_rest_in_their_usual_order(plan):
    assert plan(model="llama-70b", provider={"order": ["paid", "smart"]}) == [PAID_70B, SMART_70B, FAST_70B, FAST_70B]


def test_without_fallbacks_only_the_ordered_providers_serve(plan):
    assert plan(model="llama-70b", provider={"order": ["paid", "smart"], "allow_fallbacks": False}) == [
        PAID_70B,
        SMART_70B,
    ]


def test_only_and_ignore_filter_providers(plan):
    assert plan(model="llama-70b", provider={"only": ["smart", "paid"]}) == [SMART_70B, PAID_70B]
    assert plan(model="llama-70b", provider={"ignore": ["fast"]}) == [SMART_70B, PAID_70B]


def test_when_the_preferences_leave_nobody_the_error_says_so(plan):
    error = refused(plan, model="llama-70b", provider={"only": ["nobody"]})
    assert (error.code, error.param) == ("no_allowed_providers", "provider")


def test_sort_throughput_puts_fast_providers_first_but_free_before_trial_credits(plan):
    assert plan(model="auto", model_quality="best_quality", provider={"sort": "throughput"}) == [
        FAST_70B, FAST_70B, ("fast", "llama-8b"), ("fast", "llama-8b"),  # speed 5, best quality first
        ("shared", "a:free"), ("shared", "b:free"),  # speed 3
        ("smart", "big-model"), SMART_70B,  # speed 2
        PAID_70B,  # trial credits: last whatever their speed
    ]  # fmt: skip


def test_sort_latency_follows_what_the_router_measured(plan, health):
    health.record_latency("smart", "meta/llama-70b-instruct", 120)
    health.record_latency("fast", "llama-70b", 900)
    health.record_latency("paid", "llama-70b", 10)
    assert plan(model="llama-70b", provider={"sort": "latency"}) == [SMART_70B, FAST_70B, FAST_70B, PAID_70B]
    assert plan(model="llama-70b", provider={"sort": "price"}) == [SMART_70B, FAST_70B, FAST_70B, PAID_70B]


def test_the_nitro_variant_sorts_by_throughput(plan):
    assert plan(model="auto:nitro", model_quality="best_quality") == plan(
        model="auto", model_quality="best_quality", provider={"sort": "throughput"}
    )


def test_the_free_variant_and_a_zero_max_price_leave_out_trial_credits(plan):
    assert PAID_70B not in plan(model="llama-70b:free")
    assert PAID_70B not in plan(model="llama-70b", provider={"max_price": {"prompt": 0, "completion": 0}})
    assert PAID_70B in plan(model="llama-70b", provider={"max_price": {"prompt": 1}})


def test_a_model_whose_own_id_ends_in_free_is_that_model(plan):
    assert plan(model="a:free") == [("shared", "a:free")]


def test_unknown_provider_fields_are_ignored_and_bad_known_ones_refused(plan):
    assert plan(model="big-model", provider={"quantizations": ["int8"], "data_collection": "deny"}) == [
        ("smart", "big-model")
    ]
    assert refused(plan, model="big-model", provider={"sort": "cheapest"}).param == "provider.sort"
    assert refused(plan, model="big-model", provider={"order": "smart"}).param == "provider.order"
    assert refused(plan, model="big-model", provider={"allow_fallbacks": "no"}).param == "provider.allow_fallbacks"


# --- capabilities -----------------------------------------------------------------------------


def test_a_tools_request_goes_first_to_models_known_to_take_tools_and_never_to_one_known_not_to(plan):
    assert plan(model="llama-70b", tools=TOOLS) == [SMART_70B, FAST_70B, FAST_70B, PAID_70B]
    assert refused(plan, model="llama-8b", tools=TOOLS).code == "no_allowed_providers"


def test_require_parameters_keeps_only_models_known_to_take_everything_asked(plan):
    assert plan(model="llama-70b", tools=TOOLS, provider={"require_parameters": True}) == [SMART_70B]
    # `shared` drops `seed` before sending: with require_parameters it may not serve a seeded request.
    assert plan(model="a:free", seed=1) == [("shared", "a:free")]
    assert refused(plan, model="a:free", seed=1, provider={"require_parameters": True}).code == "no_allowed_providers"


def test_an_answer_longer_than_a_model_can_write_skips_that_model(plan):
    assert SMART_70B not in plan(model="llama-70b", max_tokens=8000)
    assert SMART_70B in plan(model="llama-70b", max_tokens=4000)


def test_a_json_schema_request_skips_models_known_not_to_follow_one(plan):
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert refused(plan, model="llama-8b", response_format=schema).code == "no_allowed_providers"
    assert plan(model="llama-70b", response_format=schema)[0] == SMART_70B


# --- prompt size, in the walk -----------------------------------------------------------------


async def test_a_prompt_too_long_for_a_model_skips_it_without_a_round_trip(make_router, upstream):
    long_prompt = [{"role": "user", "content": "word " * 8000}]  # about 10,000 tokens: more than llama-8b's 8,000
    upstream.on("fast", content_chunks("ok"))
    await make_router().complete({"model": "fast/llama-8b", "models": ["fast/llama-70b"], "messages": long_prompt})
    assert [(provider, model) for provider, _, model, _ in upstream.calls] == [("fast", "llama-70b")]


async def test_a_prompt_too_long_for_every_model_is_a_400_before_any_call(make_router, upstream):
    long_prompt = [{"role": "user", "content": "word " * 8000}]
    with pytest.raises(ServiceError) as raised:
        await make_router().complete({"model": "fast/llama-8b", "messages": long_prompt})
    assert (raised.value.code, raised.value.param) == ("context_length_exceeded", "messages")
    assert upstream.calls == []
