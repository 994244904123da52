"""Each attempt reserves quota, leases its key and settles what it used, through the router's ports."""

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_router.domain import attempt as attempt_module
from llmagg_router.domain.ports import Headroom, QuotaKey, Usage
from llmagg_router.domain.request import CallerHints
from llmagg_router.domain.upstream import Failure, UpstreamError

from .helpers import ENV, RecordingQuota, content_chunks

CHAT = {"model": "fast/llama-8b", "messages": [{"role": "user", "content": "abcdefgh"}], "max_tokens": 10}
ANSWER = {"id": "r", "choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}


async def test_an_account_without_quota_is_skipped_without_calling_it(make_router, upstream):
    quota = RecordingQuota(deny={("fast", "fast-1"): 40})
    router = make_router(quota=quota)
    results = [await router.complete(CHAT) for _ in range(2)]
    assert upstream.attempted() == [("fast", "fast-2"), ("fast", "fast-2")]
    assert [r.route.attempts for r in results] == [1, 1]


async def test_when_no_account_has_quota_the_client_gets_429_with_the_ledgers_wait(make_router, upstream):
    quota = RecordingQuota(deny={("fast", "fast-1"): 40, ("fast", "fast-2"): 12})
    with pytest.raises(ServiceError) as caught:
        await make_router(quota=quota).complete(CHAT)
    assert (caught.value.kind, caught.value.code) == (ErrorKind.RESOURCE_EXHAUSTED, "rate_limit_exceeded")
    assert caught.value.retry_after_s == 12
    assert upstream.calls == []


async def test_an_account_the_ledger_says_is_exhausted_is_neither_reserved_nor_called(make_router, upstream):
    quota = RecordingQuota(headroom={QuotaKey("fast", "fast-1", "llama-8b"): Headroom(0.0, 25.0)})
    router = make_router(quota=quota)
    result = await router.complete(CHAT)
    assert upstream.attempted() == [("fast", "fast-2")] and result.route.attempts == 1
    assert [(p, a) for p, a, _, _ in quota.reserved] == [("fast", "fast-2")]
    assert quota.asked[0] == [QuotaKey("fast", "fast-1", "llama-8b"), QuotaKey("fast", "fast-2", "llama-8b")]


async def test_when_every_account_is_exhausted_the_429_waits_for_the_soonest(make_router, upstream):
    room = {QuotaKey("fast", alias, "llama-8b"): Headroom(0.0, wait) for alias, wait in (("fast-1", 25), ("fast-2", 9))}
    with pytest.raises(ServiceError) as caught:
        await make_router(quota=RecordingQuota(headroom=room)).complete(CHAT)
    assert (caught.value.code, caught.value.retry_after_s) == ("rate_limit_exceeded", 9)
    assert upstream.calls == []


async def test_a_success_settles_the_reservation_with_the_providers_usage(make_router, upstream):
    quota = RecordingQuota()
    upstream.on("fast", ANSWER)
    result = await make_router(quota=quota).complete(CHAT)
    account = result.route.account
    # 8 characters of prompt are 3 tokens by the estimate, plus the 10 the answer may use.
    assert quota.reserved == [("fast", account, "llama-8b", 13)]
    assert quota.settled == [("fast", account, Usage(7, 3), "ok")]


async def test_a_failure_settles_with_its_reason_and_the_next_candidate_is_reserved(make_router, upstream):
    quota = RecordingQuota()
    upstream.on("fast", UpstreamError(Failure.SERVER, "HTTP 500", status=500), ANSWER)
    await make_router(quota=quota).complete(CHAT)
    first, second = (alias for _, alias in upstream.attempted())
    assert [(p, a) for p, a, _, _ in quota.reserved] == [("fast", first), ("fast", second)]
    assert quota.settled == [("fast", first, None, "server"), ("fast", second, Usage(7, 3), "ok")]


async def test_the_ledger_is_asked_for_the_model_itself_even_on_a_shared_pool(make_router, upstream):
    # The ledger knows which models share a pool; it records the model each attempt asked for.
    quota = RecordingQuota()
    await make_router(quota=quota).complete({**CHAT, "model": "shared/b:free"})
    assert quota.reserved[0][:3] == ("shared", "shared-1", "b:free")


async def test_accounts_of_one_model_are_tried_most_headroom_first(make_router, upstream):
    room = {
        QuotaKey("fast", "fast-1", "llama-8b"): Headroom(0.1),
        QuotaKey("fast", "fast-2", "llama-8b"): Headroom(0.9),
    }
    quota = RecordingQuota(headroom=room)
    router = make_router(quota=quota)
    results = [await router.complete(CHAT) for _ in range(3)]  # whatever the rotation says
    assert [r.route.account for r in results] == ["fast-2"] * 3
    quota.room[QuotaKey("fast", "fast-1", "llama-8b")] = Headroom(1.0)
    assert (await router.complete(CHAT)).route.account == "fast-1"


async def test_headroom_never_reorders_models_only_their_accounts(make_router, upstream):
    # llama-70b: fast (speed 5) before smart; smart's only account has all its quota, fast's little.
    room = {QuotaKey("fast", a, "llama-70b"): Headroom(0.05) for a in ("fast-1", "fast-2")}
    result = await make_router(quota=RecordingQuota(headroom=room)).complete({**CHAT, "model": "llama-70b"})
    assert result.route.provider == "fast"


async def test_the_client_id_reaches_the_ledger_with_every_reservation(make_router, upstream):
    quota = RecordingQuota(deny={("fast", "fast-1"): 5})
    await make_router(quota=quota).complete(CHAT, caller=CallerHints(client_id="key-123"))
    assert quota.clients == ["key-123"] * len(quota.reserved) and quota.clients


async def test_a_429_settles_with_what_the_provider_said_of_its_quota(make_router, upstream):
    quota = RecordingQuota()
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s"}
    upstream.on(
        "fast", UpstreamError(Failure.RATE_LIMITED, "HTTP 429", status=429, retry_after_s=20, headers=headers), ANSWER
    )
    await make_router(quota=quota).complete(CHAT)
    failed = quota.observed[0]
    assert (failed.status, dict(failed.headers), failed.retry_after_s) == (429, headers, 20)
    assert quota.observed[1].status == 200 and quota.observed[1].latency_ms >= 0


async def test_the_leased_key_is_the_one_the_upstream_gets(make_router, upstream):
    result = await make_router().complete(CHAT)
    assert upstream.keys == [ENV["KEY_A"] if result.route.account == "fast-1" else ENV["KEY_B"]]


async def test_a_finished_stream_settles_with_the_usage_of_its_last_chunk(make_router, upstream):
    quota = RecordingQuota()
    chunks = [*content_chunks("a", "b"), {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}]
    upstream.on("fast", chunks)
    stream = await make_router(quota=quota).open_stream({**CHAT, "stream": True})
    assert quota.settled == []  # the attempt lasts as long as the stream
    _ = [chunk async for chunk in stream]
    assert quota.settled == [("fast", stream.route.account, Usage(4, 2), "ok")]


async def test_a_stream_the_client_leaves_is_settled_as_abandoned(make_router, upstream):
    quota = RecordingQuota()
    stream = await make_router(quota=quota).open_stream({**CHAT, "stream": True})
    await stream.aclose()
    assert quota.settled == [("fast", stream.route.account, None, "abandoned")]


async def test_an_attempt_cancelled_mid_call_is_settled_as_abandoned(make_router, upstream):
    quota = RecordingQuota()
    upstream.on("fast", [*content_chunks()[:1], 5.0])
    task = asyncio.create_task(make_router(quota=quota).open_stream({**CHAT, "stream": True}))
    await upstream.called.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(p, outcome) for p, _, _, outcome in quota.settled] == [("fast", "abandoned")]


async def test_a_request_with_one_candidate_asks_no_headroom_its_reserve_says_enough(make_router, upstream):
    quota = RecordingQuota()
    await make_router(quota=quota).complete({**CHAT, "model": "smart/big-model"})
    assert quota.asked == [] and [(p, a) for p, a, _, _ in quota.reserved] == [("smart", "smart-1")]


async def test_every_attempt_settles_with_the_model_the_client_asked_for(make_router, upstream):
    quota = RecordingQuota()
    upstream.on("fast", UpstreamError(Failure.SERVER, "HTTP 500", status=500), ANSWER)
    await make_router(quota=quota).complete(CHAT)
    assert [o.requested_model for o in quota.observed] == ["fast/llama-8b", "fast/llama-8b"]


async def test_a_streamed_answer_settles_with_its_time_to_first_token_a_failure_with_none(make_router, upstream):
    quota = RecordingQuota()
    upstream.on("fast", UpstreamError(Failure.SERVER, "HTTP 500", status=500), content_chunks("a", "b"))
    stream = await make_router(quota=quota).open_stream({**CHAT, "stream": True})
    _ = [chunk async for chunk in stream]
    failed, served = quota.observed
    assert failed.first_token_ms is None
    assert served.first_token_ms is not None and 0 <= served.first_token_ms <= served.latency_ms


async def test_a_sampled_request_settles_with_its_trace_id_an_unsampled_or_untraced_one_without(
    make_router, monkeypatch
):
    quota = RecordingQuota()
    sampled = TracerProvider().get_tracer("test")
    with sampled.start_as_current_span("request") as span:
        await make_router(quota=quota).complete(CHAT)
    assert quota.observed[-1].trace_id == format(span.get_span_context().trace_id, "032x")
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with unsampled.start_as_current_span("request") as span:
        assert span.get_span_context().is_valid  # a trace id exists, but no trace was kept
        await make_router(quota=quota).complete(CHAT)
    # No tracing at all in this process (whatever tracer provider an earlier test made the global one).
    monkeypatch.setattr(attempt_module, "tracer", trace.NoOpTracer())
    await make_router(quota=quota).complete(CHAT)
    assert [o.trace_id for o in quota.observed[1:]] == ["", ""]
