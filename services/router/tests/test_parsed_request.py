"""A request is read once, into a ParsedRequest, and the walk, the resolver and the stream take that:
no later step reads the body's routing fields, splits a `:variant` or estimates tokens again."""

from dataclasses import fields

import pytest

from llmagg_router.domain import preferences as preferences_module
from llmagg_router.domain import request as request_module
from llmagg_router.domain import router as router_module
from llmagg_router.domain.preferences import NO_PREFERENCES, AskedModel, Preferences
from llmagg_router.domain.request import CallerHints, ParsedRequest, parse_request
from llmagg_router.domain.tokens import DEFAULT_COMPLETION_TOKENS, MAX_METERED_COMPLETION_TOKENS
from llmagg_router.domain.upstream import Failure, Operation, UpstreamError

from .helpers import content_chunks

HI = [{"role": "user", "content": "x" * 40}]  # 40 characters: 11 tokens as estimated
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {}}}]


def test_a_plain_chat_request():
    body = {"model": "llama-70b", "messages": HI, "temperature": 0.5}
    assert parse_request(body, Operation.CHAT) == ParsedRequest(
        model="llama-70b",
        provider=None,
        quality=None,
        upstream_body=body,
        preferences=NO_PREFERENCES,
        operation=Operation.CHAT,
        asked=(AskedModel("llama-70b", "llama-70b", None),),
        prompt_tokens=11,
        allowance=DEFAULT_COMPLETION_TOKENS,
    )


def test_the_routing_fields_fallbacks_variants_and_needs_of_a_chat_request():
    body = {
        "model": "llama-70b:nitro",
        "models": ["fast/llama-8b:free", "llama-70b:nitro", "big-model"],
        "provider": "smart",
        "model_quality": "fastest",
        "messages": HI,
        "tools": TOOLS,
        "max_tokens": 100,
    }
    request = parse_request(body, Operation.CHAT)
    assert (request.model, request.provider, request.quality) == ("llama-70b:nitro", "smart", "fastest")
    assert request.asked == (
        AskedModel("llama-70b:nitro", "llama-70b", "nitro"),
        AskedModel("fast/llama-8b:free", "fast/llama-8b", "free"),
        AskedModel("big-model", "big-model", None),
    )
    assert request.preferences == Preferences(
        fallbacks=("fast/llama-8b:free", "big-model"), needs=frozenset({"tools"}), max_output_tokens=100
    )
    assert request.upstream_body == {"model": "llama-70b:nitro", "messages": HI, "tools": TOOLS, "max_tokens": 100}
    assert (request.prompt_tokens, request.allowance, request.model_type) == (11, 100, "chat")


def test_requests_alike_share_one_preferences_object_and_one_tuple_of_models_asked():
    """The resolver keeps a plan per request shape, found by its preferences: one object for each need and
    cap, not one per request (a plan found by identity costs no field-by-field comparison)."""
    first, second, other = (
        parse_request({"model": "llama-70b", "messages": HI, "max_tokens": cap, **extra}, Operation.CHAT).preferences
        for cap, extra in ((100, {"tools": TOOLS}), (100, {"tools": TOOLS}), (200, {}))
    )
    assert first is second and first == Preferences(needs=frozenset({"tools"}), max_output_tokens=100)
    asked = [parse_request({"model": "llama-70b:nitro", "messages": HI}, Operation.CHAT).asked for _ in range(2)]
    assert asked[0] is asked[1] and asked[0] == (AskedModel("llama-70b:nitro", "llama-70b", "nitro"),)
    assert other == Preferences(max_output_tokens=200)
    assert parse_request({"model": "llama-70b", "messages": HI}, Operation.CHAT).preferences is NO_PREFERENCES


def test_openrouters_provider_object_becomes_preferences_and_pins_nothing():
    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}}
    body = {
        "model": "auto",
        "provider": {"order": ["Smart"], "allow_fallbacks": False, "require_parameters": True},
        "messages": HI,
        "response_format": schema,
        "max_completion_tokens": 2**40,
    }
    request = parse_request(body, Operation.CHAT)
    assert request.provider is None
    assert request.preferences == Preferences(
        order=("smart",),
        allow_fallbacks=False,
        require_parameters=True,
        needs=frozenset({"json_schema"}),
        max_output_tokens=2**40,
        fields=frozenset({"model", "messages", "response_format", "max_completion_tokens"}),
    )
    assert request.allowance == MAX_METERED_COMPLETION_TOKENS  # valid, but metered as no answer is that long


def test_an_embeddings_request():
    body = {"model": "embed-1", "input": ["abcd", "efgh"], "dimensions": 64}
    request = parse_request(body, Operation.EMBEDDINGS)
    assert (request.operation, request.model_type) == (Operation.EMBEDDINGS, "embedding")
    assert (request.prompt_tokens, request.allowance) == (3, 0)
    assert request.asked == (AskedModel("embed-1", "embed-1", None),)
    assert request.preferences is NO_PREFERENCES


def test_a_parsed_request_cannot_change_after_the_parse():
    request = parse_request({"model": "auto", "messages": HI}, Operation.CHAT)
    with pytest.raises(AttributeError):
        request.model = "other"  # type: ignore[misc]
    assert {f.name for f in fields(ParsedRequest)} >= {"asked", "prompt_tokens", "allowance", "preferences"}


@pytest.fixture
def counted(monkeypatch):
    """How often each step of reading a request runs during the test."""
    counts: dict[str, int] = {}

    def count(module, name):
        original = getattr(module, name)

        def counting(*args, **kwargs):
            counts[name] = counts.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)

    count(router_module, "parse_request")
    count(preferences_module, "split_variant")
    for name in ("needed_capabilities", "estimate_prompt_tokens", "requested_completion_tokens"):
        count(request_module, name)
    return counts


def resolutions(monkeypatch, router) -> list[ParsedRequest]:
    """The requests the router's walks resolved; `resolve` (a model named outside a request) must not run."""
    seen: list[ParsedRequest] = []
    original = router.resolver.resolve_request

    def spy(request, own_key=None):
        seen.append(request)
        return original(request, own_key)

    def unexpected(*args, **kwargs):
        raise AssertionError("the router resolved a model from its name, not from the parsed request")

    monkeypatch.setattr(router.resolver, "resolve_request", spy)
    monkeypatch.setattr(router.resolver, "resolve", unexpected)
    return seen


async def test_a_request_that_waits_and_walks_again_is_parsed_once(make_router, upstream, clock, counted, monkeypatch):
    router = make_router()
    walked = resolutions(monkeypatch, router)
    upstream.on(
        "fast", *(UpstreamError(Failure.RATE_LIMITED, "HTTP 429", status=429, retry_after_s=s) for s in (20, 5))
    )
    body = {"model": "fast/llama-8b:nitro", "messages": HI}
    result = await router.complete(body, caller=CallerHints(max_wait_s=10))
    assert clock.slept == [5]  # two walks: the second after the wait
    assert (result.route.provider, result.route.model, result.route.attempts) == ("fast", "llama-8b", 3)
    assert counted == {
        "parse_request": 1,
        "split_variant": 1,
        "needed_capabilities": 1,
        "estimate_prompt_tokens": 1,
        "requested_completion_tokens": 1,
    }
    assert len(walked) == 2 and walked[0] is walked[1]


async def test_a_stream_that_falls_over_to_a_fallback_model_is_parsed_once(make_router, upstream, counted, monkeypatch):
    router = make_router()
    walked = resolutions(monkeypatch, router)
    upstream.on("smart", UpstreamError(Failure.SERVER, "HTTP 500", status=500))
    upstream.on("fast", content_chunks("hello"))
    body = {"model": "smart/big-model", "models": ["fast/llama-8b:free"], "messages": HI, "stream": True}
    stream = await router.open_stream(body)
    chunks = [chunk async for chunk in stream]
    assert [(p, m) for p, _, m, _ in upstream.calls] == [("smart", "big-model"), ("fast", "llama-8b")]
    assert chunks[-1]["provider"] == "fast"
    assert counted["parse_request"] == 1 and counted["split_variant"] == 2  # once per model asked
    assert counted["estimate_prompt_tokens"] == counted["needed_capabilities"] == 1
    assert len(walked) == 1
