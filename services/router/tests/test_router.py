"""The fallback engine: which failures fall over, what each teaches the health table, what clients see."""

import asyncio

import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_router.domain.ports import CircuitState
from llmagg_router.domain.upstream import Failure, Operation, UpstreamError

from .helpers import ENV, content_chunks

CHAT = {"model": "llama-70b", "messages": [{"role": "user", "content": "hi"}]}


def rate_limited(seconds=None):
    return UpstreamError(Failure.RATE_LIMITED, "HTTP 429", status=429, retry_after_s=seconds)


async def test_429_moves_to_next_account_without_waiting(make_router, upstream, health):
    router = make_router()
    upstream.on("fast", rate_limited(20))
    result = await router.complete({**CHAT, "model": "fast/llama-8b"})
    assert result.route.attempts == 2
    assert result.route.provider == "fast"
    first, second = upstream.attempted()
    assert first[1] != second[1]
    assert health.cooling_for("fast", first[1], "llama-8b") == pytest.approx(20)


async def test_429_without_a_hint_cools_down_for_the_default(make_router, upstream, health):
    router = make_router(default_cooldown_s=45)
    upstream.on("smart", rate_limited())
    with pytest.raises(ServiceError) as caught:
        await router.complete({**CHAT, "model": "smart/big-model"})
    assert caught.value.kind is ErrorKind.RESOURCE_EXHAUSTED
    assert caught.value.retry_after_s == pytest.approx(45)
    assert health.cooling_for("smart", "smart-1", "big-model") == pytest.approx(45)


async def test_when_every_account_is_rate_limited_the_client_gets_429_with_the_soonest_retry(make_router, upstream):
    router = make_router()
    upstream.on("fast", rate_limited(30), rate_limited(8))
    with pytest.raises(ServiceError) as caught:
        await router.complete({**CHAT, "model": "fast/llama-8b"})
    assert (caught.value.kind, caught.value.code) == (ErrorKind.RESOURCE_EXHAUSTED, "rate_limit_exceeded")
    assert caught.value.retry_after_s == pytest.approx(8)
    # Both accounts now cool down: the next request fails at once, without calling upstream.
    calls = len(upstream.calls)
    with pytest.raises(ServiceError) as again:
        await router.complete({**CHAT, "model": "fast/llama-8b"})
    assert len(upstream.calls) == calls
    assert again.value.retry_after_s == pytest.approx(8)


async def test_401_disables_the_account_and_moves_on(make_router, upstream):
    router = make_router()
    upstream.on("fast", UpstreamError(Failure.AUTH, "HTTP 401", status=401))
    result = await router.complete({**CHAT, "model": "fast/llama-8b"})
    bad_account = upstream.attempted()[0][1]
    assert result.route.account != bad_account
    keys = router.ports.keys
    assert [keys.usable(account) for account in keys.accounts("fast")] == [
        account.alias != bad_account for account in keys.accounts("fast")
    ]


async def test_5xx_falls_over_and_opens_the_circuit_after_repeated_failures(make_router, upstream, health):
    router = make_router()
    upstream.on("fast", *[UpstreamError(Failure.SERVER, "HTTP 500", status=500)] * 2)
    result = await router.complete({**CHAT, "model_quality": "fastest"})
    assert result.route.provider != "fast"
    assert health.circuit_state("fast/llama-70b") is CircuitState.OPEN


async def test_a_client_error_is_returned_without_fallback(make_router, upstream):
    router = make_router()
    bad = UpstreamError(
        Failure.CLIENT,
        "HTTP 400",
        status=400,
        error={"message": "logit_bias values must be within 100", "code": "invalid_value", "param": "logit_bias"},
    )
    upstream.on("fast", bad)
    with pytest.raises(ServiceError) as caught:  # a value the router does not check itself reaches the provider
        await router.complete({**CHAT, "model": "fast/llama-8b", "logit_bias": {"42": 900}})
    assert len(upstream.calls) == 1
    assert caught.value.kind is ErrorKind.INVALID_ARGUMENT
    assert (caught.value.code, caught.value.param) == ("invalid_value", "logit_bias")
    assert "logit_bias values must be" in caught.value.message


async def test_context_overflow_only_tries_larger_context_models(make_router, upstream):
    router = make_router()
    upstream.on("fast", UpstreamError(Failure.CONTEXT_LENGTH, "too long", status=400))
    result = await router.complete({**CHAT, "model_quality": "fastest"})
    windows = {("fast", "llama-70b"): 32000, ("smart", "meta/llama-70b-instruct"): 128000, ("paid", "llama-70b"): 64000}
    tried = [(p, m) for p, _, m, _ in upstream.calls]
    assert tried[0] == ("fast", "llama-70b")
    assert all(windows[t] > 32000 for t in tried[1:])
    assert result.route.provider in ("smart", "paid")


async def test_context_overflow_everywhere_is_a_400(make_router, upstream):
    router = make_router()
    overflow = UpstreamError(Failure.CONTEXT_LENGTH, "too long", status=400)
    upstream.on("fast", overflow)
    upstream.on("smart", overflow)
    upstream.on("paid", overflow)
    with pytest.raises(ServiceError) as caught:
        await router.complete(CHAT)
    assert (caught.value.kind, caught.value.code) == (ErrorKind.INVALID_ARGUMENT, "context_length_exceeded")


def unsupported():
    return UpstreamError(Failure.UNSUPPORTED, "the anthropic protocol cannot express n=2 (several choices)")


async def test_a_candidate_whose_protocol_cannot_express_the_request_is_passed_over_without_penalty(
    make_router, upstream, health
):
    router = make_router()
    upstream.on("fast", unsupported(), unsupported())
    result = await router.complete({**CHAT, "model_quality": "fastest"})
    assert [p for p, _ in upstream.attempted()][:2] == ["fast", "fast"] and result.route.provider != "fast"
    assert health.circuit_state("fast/llama-70b") is CircuitState.CLOSED
    assert [health.cooling_for("fast", a, "llama-70b") for a in ("fast-1", "fast-2")] == [0, 0]
    assert all(router.ports.keys.usable(account) for account in router.ports.keys.accounts("fast"))


async def test_when_no_candidate_can_express_the_request_the_client_gets_a_400_naming_why(make_router, upstream):
    router = make_router()
    upstream.on("fast", unsupported(), unsupported())
    with pytest.raises(ServiceError) as caught:
        await router.complete({**CHAT, "model": "fast/llama-8b"})
    assert (caught.value.kind, caught.value.code) == (ErrorKind.INVALID_ARGUMENT, "unsupported_request")
    assert "cannot express n=2" in caught.value.message


async def test_an_unsupported_candidate_does_not_hide_that_the_others_are_rate_limited(make_router, upstream):
    router = make_router()
    upstream.on("fast", unsupported(), rate_limited(9))
    with pytest.raises(ServiceError) as caught:
        await router.complete({**CHAT, "model": "fast/llama-8b"})
    assert (caught.value.code, caught.value.retry_after_s) == ("rate_limit_exceeded", 9)


async def test_when_everything_fails_the_error_lists_the_attempts_without_keys(make_router, upstream):
    router = make_router()
    for provider in ("fast", "smart", "paid"):
        upstream.on(provider, *[UpstreamError(Failure.SERVER, "HTTP 502", status=502)] * 3)
    with pytest.raises(ServiceError) as caught:
        await router.complete(CHAT)
    error = caught.value
    assert (error.kind, error.code) == (ErrorKind.UNAVAILABLE, "all_candidates_failed")
    assert "fast/llama-70b via fast-" in error.message and "paid/llama-70b via paid-1" in error.message
    assert not any(key in error.message for key in ENV.values())


async def test_max_attempts_bounds_the_chain(make_router, upstream):
    router = make_router(max_attempts=2)
    for provider in ("fast", "smart", "paid"):
        upstream.on(provider, *[UpstreamError(Failure.TIMEOUT, "slow")] * 3)
    with pytest.raises(ServiceError):
        await router.complete(CHAT)
    assert len(upstream.calls) == 2


async def test_the_whole_chain_runs_under_one_deadline(make_router, upstream):
    router = make_router(request_timeout_s=0.05)
    for provider in ("fast", "smart", "paid"):
        upstream.on(provider, [10.0], [10.0])  # streams that say nothing for 10 s
    with pytest.raises(ServiceError) as caught:
        await router.complete(CHAT)
    assert (caught.value.kind, caught.value.code) == (ErrorKind.DEADLINE_EXCEEDED, "request_timeout")


async def test_router_fields_are_not_sent_upstream_and_the_model_is_the_providers_id(make_router, upstream):
    router = make_router()
    await router.complete({**CHAT, "model": "llama-70b", "provider": "smart", "model_quality": "fastest", "seed": 7})
    _, _, _, body = upstream.calls[0]
    assert body["model"] == "meta/llama-70b-instruct"
    assert "provider" not in body and "model_quality" not in body
    assert body["seed"] == 7


async def test_the_response_names_the_provider(make_router):
    result = await make_router().complete({**CHAT, "model": "smart/big-model"})
    assert result.body["provider"] == "smart"


async def test_embeddings_use_embedding_models(make_router, upstream):
    result = await make_router().complete({"model": "auto", "input": "x"}, Operation.EMBEDDINGS)
    assert (result.route.provider, result.route.model) == ("smart", "embed-1")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([1, 2], None),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": "auto", "messages": [{"role": "user"}], "provider": 3}, "provider"),
        ({"model": "auto", "messages": [{"role": "user"}], "stream": "true"}, "stream"),
    ],
)
async def test_malformed_requests_are_rejected_before_any_upstream_call(make_router, upstream, body, param):
    with pytest.raises(ServiceError) as caught:
        await make_router().complete(body)
    assert caught.value.kind is ErrorKind.INVALID_ARGUMENT
    assert caught.value.param == param
    assert upstream.calls == []


# --- streaming ----------------------------------------------------------------------------------


async def collect(stream):
    return [chunk async for chunk in stream]


async def test_a_stream_cut_before_content_falls_over_to_the_next_candidate(make_router, upstream):
    router = make_router()
    upstream.on("fast", [*content_chunks()[:1], UpstreamError(Failure.BAD_RESPONSE, "cut")])
    stream = await router.open_stream({**CHAT, "model_quality": "fastest", "stream": True})
    first_account = upstream.attempted()[0][1]
    assert stream.route.attempts == 2
    assert stream.route.account != first_account
    chunks = await collect(stream)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["provider"] == stream.route.provider for c in chunks)


async def test_a_stream_cut_after_content_raises_instead_of_ending_cleanly(make_router, upstream, health):
    router = make_router()
    upstream.on("fast", [*content_chunks("Hel")[:2], UpstreamError(Failure.BAD_RESPONSE, "cut")])
    stream = await router.open_stream({**CHAT, "model": "fast/llama-8b", "stream": True})
    received = []
    with pytest.raises(ServiceError) as caught:
        async for chunk in stream:
            received.append(chunk)
    assert caught.value.code == "upstream_stream_interrupted"
    assert received[-1]["choices"][0]["delta"]["content"] == "Hel"
    assert len(upstream.calls) == 1  # no silent retry once the client has content


async def test_a_stream_waiting_past_its_time_limit_ends_with_stream_time_limit(make_router, upstream, metrics):
    router = make_router(stream_max_s=0.05)
    upstream.on("fast", [*content_chunks("Hel")[:2], 10.0, *content_chunks("lo")[1:]])  # silent for 10 s
    stream = await router.open_stream({**CHAT, "model": "fast/llama-8b", "stream": True})
    received = []
    with pytest.raises(ServiceError) as caught:
        async for chunk in stream:
            received.append(chunk)
    assert (caught.value.kind, caught.value.code) == (ErrorKind.DEADLINE_EXCEEDED, "stream_time_limit")
    assert [c["choices"][0]["delta"].get("content") for c in received] == ["", "Hel"]
    assert upstream.streams_closed == 1
    outcome = {"operation": "chat", "provider": "fast", "model": "llama-8b", "outcome": "abandoned"}
    assert metrics.registry.get_sample_value("llmagg_router_attempts_total", outcome) == 1.0


async def test_only_the_waits_for_the_upstream_count_against_a_streams_time_limit(make_router, upstream):
    """A client slow to take the chunks is not cut: what the upstream has sent already still goes on."""
    router = make_router(stream_max_s=0.05)
    upstream.on("fast", content_chunks("Hel", "lo"))
    stream = await router.open_stream({**CHAT, "model": "fast/llama-8b", "stream": True})
    received = []
    async for chunk in stream:
        received.append(chunk)
        await asyncio.sleep(0.04)  # past the deadline by the third chunk
    assert [c["choices"][0].get("finish_reason") for c in received] == [None, None, None, "stop"]
    assert upstream.streams_closed == 1


async def test_a_stream_ended_by_shutdown_says_so(make_router, upstream):
    router = make_router()
    upstream.on("fast", [*content_chunks("Hel")[:2], 10.0, *content_chunks("lo")[1:]])
    stream = await router.open_stream({**CHAT, "model": "fast/llama-8b", "stream": True})
    received = []
    content = asyncio.Event()

    async def take() -> None:
        async for chunk in stream:
            received.append(chunk)
            if chunk["choices"][0]["delta"].get("content"):
                content.set()

    taking = asyncio.create_task(take())
    await content.wait()
    router.interrupt()
    with pytest.raises(ServiceError) as caught:
        await taking
    assert caught.value.code == "server_shutting_down"
    assert upstream.streams_closed == 1


async def test_a_rate_limited_stream_falls_over(make_router, upstream):
    router = make_router()
    upstream.on("fast", rate_limited(3))
    stream = await router.open_stream({**CHAT, "model": "fast/llama-8b", "stream": True})
    assert stream.route.attempts == 2
    await collect(stream)


async def test_stream_errors_before_content_surface_like_non_stream_errors(make_router, upstream):
    router = make_router(default_cooldown_s=5)
    upstream.on("smart", rate_limited())
    with pytest.raises(ServiceError) as caught:
        await router.open_stream({**CHAT, "model": "smart/big-model", "stream": True})
    assert caught.value.kind is ErrorKind.RESOURCE_EXHAUSTED


async def test_a_stream_never_iterated_releases_its_upstream_once_closed(make_router, upstream):
    stream = await make_router().open_stream({**CHAT, "model": "fast/llama-8b", "stream": True})
    assert upstream.streams_closed == 0
    await stream.aclose()
    await stream.aclose()
    assert upstream.streams_closed == 1


async def test_a_failed_stream_attempt_releases_its_upstream_before_the_next(make_router, upstream):
    upstream.on("fast", [*content_chunks()[:1], UpstreamError(Failure.BAD_RESPONSE, "cut")])
    stream = await make_router().open_stream({**CHAT, "model": "fast/llama-8b", "stream": True})
    assert upstream.streams_closed == 1
    await collect(stream)
    assert upstream.streams_closed == 2


async def test_fields_a_provider_rejects_are_dropped_for_that_provider_only(make_router, upstream):
    router = make_router()
    options = {"stream_options": {"include_usage": True}, "seed": 1, "temperature": 0.1}
    stream = await router.open_stream({**CHAT, "model": "shared/a:free", "stream": True, **options})
    await collect(stream)
    stream = await router.open_stream({**CHAT, "model": "fast/llama-8b", "stream": True, **options})
    await collect(stream)
    (_, _, _, to_shared), (_, _, _, to_fast) = upstream.calls
    assert "stream_options" not in to_shared and "seed" not in to_shared and to_shared["temperature"] == 0.1
    assert to_fast["stream_options"] == {"include_usage": True} and to_fast["seed"] == 1


async def test_a_streams_latency_is_its_time_to_first_content_not_its_length(make_router, upstream, health):
    role, first, *rest = content_chunks("quick", "tail")
    upstream.on("smart", [role, first, 0.3, *rest])
    await collect(await make_router().open_stream({**CHAT, "model": "smart/big-model", "stream": True}))
    assert health.latency_ms("smart", "big-model") < 150


async def test_a_non_stream_request_is_read_as_a_stream_so_a_silent_provider_costs_the_first_byte_timeout(
    make_router, upstream
):
    upstream.on("fast", [5.0], [5.0])  # both accounts' streams say nothing for 5 s
    router = make_router(first_byte_timeout_s=0.05)
    result = await router.complete({**CHAT, "model_quality": "fastest"})
    assert [provider for provider, _ in upstream.attempted()] == ["fast", "fast", "smart"]
    assert result.route.provider == "smart" and result.body["choices"][0]["message"]["content"] == "ok"
    sent = upstream.calls[0][3]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_a_provider_that_rejects_stream_options_is_not_sent_them(make_router, upstream):
    await make_router().complete({**CHAT, "model": "shared/a:free"})
    assert "stream_options" not in upstream.calls[0][3] and upstream.calls[0][3]["stream"] is True


async def test_without_upstream_streaming_a_non_stream_request_stays_one_exchange(make_router, upstream):
    result = await make_router(stream_upstream=False).complete({**CHAT, "model": "smart/big-model"})
    assert "stream" not in upstream.calls[0][3] and result.body["choices"][0]["message"]["content"] == "ok"


async def test_a_key_cut_across_the_chunks_of_a_tool_calls_name_is_not_in_the_assembled_answer(make_router, upstream):
    """A non-stream request is read as a stream and put back together: the pieces of a tool call's name are
    joined there (the stream's redaction holds back only text a client joins, and leaves names whole)."""
    key = "sk-test-cccccccccccc"  # smart-1's
    call = {"index": 0, "id": "call-1", "type": "function", "function": {"name": key[:7], "arguments": ""}}
    upstream.on(
        "smart",
        [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}}]},
            {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": key[7:]}}]}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        ],
    )
    result = await make_router().complete({**CHAT, "model": "smart/big-model"})
    assert upstream.keys == [key]
    [tool_call] = result.body["choices"][0]["message"]["tool_calls"]
    assert tool_call["function"]["name"] == "[redacted]"


async def test_a_key_spelt_by_the_logprobs_of_several_chunks_is_not_in_the_assembled_answer(make_router, upstream):
    key = "sk-test-cccccccccccc"  # smart-1's
    pieces = ["echo ", key[:7], key[7:], "."]
    upstream.on(
        "smart",
        [
            {"choices": [{"index": 0, "delta": {"content": p}, "logprobs": {"content": [{"token": p, "logprob": -1}]}}]}
            for p in pieces
        ]
        + [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}],
    )
    result = await make_router().complete({**CHAT, "model": "smart/big-model", "logprobs": True})
    choice = result.body["choices"][0]
    assert upstream.keys == [key] and key[:7] not in str(result.body)
    assert [e["token"] for e in choice["logprobs"]["content"]] == ["echo ", "[redacted]", "."]
    assert choice["message"]["content"] == "echo [redacted]."


async def test_an_answer_read_whole_from_a_stream_is_joined_before_redaction_a_passed_on_stream_is_not(
    make_router, upstream
):
    """The router joins a stream it reads whole and takes the key out of the answer (UpstreamReader.collect):
    no text is held back chunk by chunk for it. A stream passed on to the client has its chunks redacted as
    they go (HttpAdapter.stream)."""
    router = make_router()
    await router.complete({**CHAT, "model": "fast/llama-8b"})
    stream = await router.open_stream({**CHAT, "model": "fast/llama-8b", "stream": True})
    async for _ in stream:
        pass
    assert upstream.joined == [True, False]
