"""The OpenAI adapter against the provider simulator: every upstream behaviour maps to one Failure."""

from __future__ import annotations

import asyncio
import gc
import json
import sys

import aiohttp.test_utils
import aiohttp.web
import pytest

from llmagg.common.secrets import Secret
from llmagg.registry import Account, Provider
from llmagg_devstack import SimulatorProcess
from llmagg_router.adapters.http_adapter import HttpAdapter
from llmagg_router.adapters.http_upstream import HttpUpstream
from llmagg_router.adapters.openai_http import OpenAIChunks, OpenAIDialect
from llmagg_router.adapters.upstream_errors import classify, seconds_to_quota_day_end
from llmagg_router.domain.upstream import Candidate, Failure, Operation, UpstreamError

KEY = "sk-adapter-test-0123456789"
SECRET = Secret(KEY)
BODY = {"model": "sim-small", "messages": [{"role": "user", "content": "echo: a b"}]}


@pytest.fixture(scope="module")
def sim():
    with SimulatorProcess() as simulator:
        yield simulator


@pytest.fixture
async def adapter():
    adapter = HttpAdapter(HttpUpstream(connect_timeout_s=1, read_timeout_s=0.5), OpenAIDialect())
    yield adapter
    await adapter.close()


def candidate(base_url: str, auth: str = "bearer") -> Candidate:
    provider = Provider(id="sim", name="sim", protocol="openai", base_url=base_url, auth=auth)
    return Candidate(provider, "sim-small", None, Account("sim", "sim-1", base_url))


async def failure_of(awaitable) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await awaitable
    return caught.value


async def test_a_completion_comes_back_parsed_with_the_accounts_key_sent(sim, adapter):
    sim.reset("plain")
    response = await adapter.request(candidate(sim.base_url("plain")), SECRET, Operation.CHAT, BODY)
    assert response["choices"][0]["message"]["content"] == "a b"
    assert sim.requests("plain")[-1]["headers"]["authorization"] == f"Bearer {KEY}"


async def test_x_api_key_auth_sends_the_key_in_that_header(sim, adapter):
    sim.reset("xkey")
    with pytest.raises(UpstreamError):  # the simulator wants a bearer token: this proves what was sent
        await adapter.request(candidate(sim.base_url("xkey"), auth="x-api-key"), SECRET, Operation.CHAT, BODY)
    headers = sim.requests("xkey")[-1]["headers"]
    assert headers["x-api-key"] == KEY and "authorization" not in headers


async def test_stream_yields_chunks_until_done(sim, adapter):
    async with adapter.stream(candidate(sim.base_url("plain")), SECRET, {**BODY, "stream": True}) as chunks:
        received = [chunk async for chunk in chunks]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in received) == "a b"


@pytest.mark.parametrize("joined", [False, True])
async def test_a_stream_read_to_its_end_leaves_no_generator_for_the_loop_to_close(sim, adapter, joined):
    # A generator dropped unfinished is closed by the loop's finalizer hook: a thread-safe wake-up and a
    # task per request on the hot path. Each of the adapter's is closed where it is used.
    sim.reset("plain")
    finalized: list[object] = []
    hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(hooks.firstiter, lambda agen: (finalized.append(agen), hooks.finalizer(agen)))
    try:
        body = {**BODY, "stream": True}
        async with adapter.stream(candidate(sim.base_url("plain")), SECRET, body, joined=joined) as chunks:
            received = [chunk async for chunk in chunks]
        gc.collect()
        await asyncio.sleep(0)
    finally:
        sys.set_asyncgen_hooks(*hooks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in received) == "a b"
    assert [getattr(agen, "__qualname__", agen) for agen in finalized] == []


@pytest.mark.parametrize(
    ("fault", "failure"),
    [
        ({"type": "429", "retry_after": 3}, Failure.RATE_LIMITED),
        ({"type": "401"}, Failure.AUTH),
        ({"type": "500"}, Failure.SERVER),
        ({"type": "503"}, Failure.SERVER),
        ({"type": "400"}, Failure.CLIENT),
        ({"type": "context_length"}, Failure.CONTEXT_LENGTH),
        ({"type": "malformed_json"}, Failure.BAD_RESPONSE),
        ({"type": "cut_stream"}, Failure.BAD_RESPONSE),
        ({"type": "hang", "max_hang_s": 5}, Failure.TIMEOUT),
    ],
)
async def test_each_upstream_fault_maps_to_its_failure(sim, adapter, fault, failure):
    name = f"fault-{fault['type']}"
    sim.reset(name)
    sim.script(name, [fault])
    error = await failure_of(adapter.request(candidate(sim.base_url(name)), SECRET, Operation.CHAT, BODY))
    assert error.failure is failure
    assert KEY not in error.message


async def test_a_429_carries_the_providers_retry_hint(sim, adapter):
    sim.script("hinted", [{"type": "429", "retry_after": 4}])
    error = await failure_of(adapter.request(candidate(sim.base_url("hinted")), SECRET, Operation.CHAT, BODY))
    assert error.retry_after_s == pytest.approx(4)


async def test_a_client_error_keeps_the_upstreams_error_object(sim, adapter):
    sim.script("bad", [{"type": "400"}])
    error = await failure_of(adapter.request(candidate(sim.base_url("bad")), SECRET, Operation.CHAT, BODY))
    assert error.error["param"] == "temperature" and error.error["code"] == "invalid_value"


@pytest.mark.parametrize(
    ("fault", "failure"), [("cut_stream", Failure.BAD_RESPONSE), ("malformed_json", Failure.BAD_RESPONSE)]
)
async def test_a_broken_stream_raises_while_iterating(sim, adapter, fault, failure):
    name = f"stream-{fault}"
    sim.script(name, [{"type": fault, "after_chunks": 1}])
    received = []
    with pytest.raises(UpstreamError) as caught:
        async with adapter.stream(candidate(sim.base_url(name)), SECRET, {**BODY, "stream": True}) as chunks:
            async for chunk in chunks:
                received.append(chunk)
    assert caught.value.failure is failure
    assert received  # it broke after the stream had started


async def test_a_stream_that_fails_before_starting_raises_on_open(sim, adapter):
    sim.script("stream-429", [{"type": "429"}])
    with pytest.raises(UpstreamError) as caught:
        async with adapter.stream(candidate(sim.base_url("stream-429")), SECRET, {**BODY, "stream": True}):
            pass
    assert caught.value.failure is Failure.RATE_LIMITED


async def test_a_closed_port_is_a_connect_failure(adapter):
    from llmagg_devstack import free_port

    error = await failure_of(
        adapter.request(candidate(f"http://127.0.0.1:{free_port()}/v1"), SECRET, Operation.CHAT, BODY)
    )
    assert error.failure is Failure.CONNECT


@pytest.mark.parametrize(
    ("status", "body", "failure"),
    [
        (529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', Failure.SERVER),
        (403, b"forbidden", Failure.AUTH),
        (404, b'{"error":{"message":"model not found"}}', Failure.NOT_FOUND),
        (410, b'{"error":{"message":"The model has been retired","code":"model_not_found"}}', Failure.NOT_FOUND),
        (413, b'{"error":"Request too large: too many tokens"}', Failure.CONTEXT_LENGTH),
        (422, b"[]", Failure.CLIENT),
        (409, b"", Failure.SERVER),
    ],
)
def test_classify_other_statuses_and_error_shapes(status, body, failure):
    assert classify(status, {}, body).failure is failure


def test_gemini_style_list_wrapped_errors_give_their_message_and_delay():
    body = b'[{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Quota exceeded. Please retry in 23.4s."}}]'
    error = classify(429, {}, body)
    assert error.retry_after_s == pytest.approx(23.4) and "Quota exceeded" in error.message


async def test_lines_that_arrived_before_the_connection_broke_are_still_read():
    """A stream cut mid-event: its whole lines reach the reader, then the cut is a BAD_RESPONSE."""
    cut = b'data: {"choices": [{"delta": {"content": "Hello"}}]}\n\ndata: {"choices": [{"delta": {"co'

    async def answer_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 9999\r\n\r\n" + cut)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_then_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = HttpUpstream(connect_timeout_s=1, read_timeout_s=5)
    lines = []
    try:
        response = await http.open(f"http://127.0.0.1:{port}/v1/chat/completions", {}, {}, classify)
        with pytest.raises(UpstreamError) as caught:
            async for batch in http.lines(response):
                lines += batch
        response.release()
    finally:
        await http.close()
        server.close()
    assert lines == [b'data: {"choices": [{"delta": {"content": "Hello"}}]}', b""]
    assert caught.value.failure is Failure.BAD_RESPONSE
    assert caught.value.message == "the connection closed before the response was complete"


async def test_a_stream_whose_answer_was_read_whole_gives_its_connection_back_for_the_next():
    event = (
        b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
    )
    connections = 0

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(event), event))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(keep_alive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    adapter = HttpAdapter(HttpUpstream(connect_timeout_s=1, read_timeout_s=5), OpenAIDialect())
    target = candidate(f"http://127.0.0.1:{port}/v1")
    try:
        for _ in range(2):
            async with adapter.stream(target, SECRET, {**BODY, "stream": True}) as chunks:
                assert [c["choices"][0]["delta"]["content"] async for c in chunks] == ["hi"]
        with pytest.raises(RuntimeError):  # left by an error once the whole answer was read: given back too
            async with adapter.stream(target, SECRET, {**BODY, "stream": True}) as chunks:
                await anext(aiter(chunks))
                raise RuntimeError("the client went away")
        async with adapter.stream(target, SECRET, {**BODY, "stream": True}) as chunks:
            assert [c["choices"][0]["delta"]["content"] async for c in chunks] == ["hi"]
    finally:
        await adapter.close()
        server.close()
    assert connections == 1


async def test_a_reads_events_are_parsed_as_they_are_taken_so_the_first_goes_on_first():
    """Events that arrive in one read (a provider's burst): the first chunk is handed out before the later
    events are parsed; a bad one among them fails only when it is reached, after those before it."""
    events = [{"choices": [{"index": 0, "delta": {"content": word}}]} for word in ("one", "two")]
    body = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + b"data: {broken\n\n"
    fed: list[dict] = []

    class Counted(OpenAIChunks):
        def feed(self, chunk):
            fed.append(chunk)
            return super().feed(chunk)

    class Dialect(OpenAIDialect):
        def exchange(self, *args):
            return super().exchange(*args)._replace(translator=Counted)

    async def answer_in_one_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(body)
        writer.write(head + body)
        await writer.drain()

    server = await asyncio.start_server(answer_in_one_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http, reads = HttpUpstream(connect_timeout_s=1, read_timeout_s=5), []
    lines = http.lines

    async def counted(response):
        async for batch in lines(response):
            reads.append(len(batch))
            yield batch

    http.lines = counted
    adapter = HttpAdapter(http, Dialect())
    try:
        async with adapter.stream(candidate(f"http://127.0.0.1:{port}/v1"), SECRET, {**BODY, "stream": True}) as chunks:
            first = await anext(aiter(chunks))
            assert first["choices"][0]["delta"]["content"] == "one"
            assert reads == [6]  # the three events and their blank lines came in one read
            assert len(fed) == 1  # "two" and the broken line are not parsed yet
            assert (await anext(aiter(chunks)))["choices"][0]["delta"]["content"] == "two"
            with pytest.raises(UpstreamError) as caught:
                await anext(aiter(chunks))
    finally:
        await adapter.close()
        server.close()
    assert caught.value.failure is Failure.BAD_RESPONSE
    assert fed == events


async def test_an_error_chunk_mid_stream_raises_after_the_content_before_it(sim, adapter):
    sim.script("stream-error", [{"type": "stream_error", "after_chunks": 1}])
    received = []
    with pytest.raises(UpstreamError) as caught:
        async with adapter.stream(candidate(sim.base_url("stream-error")), SECRET, {**BODY, "stream": True}) as chunks:
            async for chunk in chunks:
                received.append(chunk)
    assert caught.value.failure is Failure.SERVER
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in received) == "a"


def test_a_stream_that_ends_cleanly_without_a_finish_reason_is_incomplete():
    translator = OpenAIChunks()
    assert list(translator.feed({"choices": [{"index": 0, "delta": {"content": "a"}}]})) != []
    with pytest.raises(UpstreamError) as caught:
        translator.end()
    assert caught.value.failure is Failure.BAD_RESPONSE
    list(translator.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    assert list(translator.end()) == []


GOOGLE_RPC = "type.googleapis.com/google.rpc."


def test_a_bad_key_on_googles_openai_compatible_api_is_a_rejected_key_not_a_bad_request():
    body = (
        b'[{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": '
        b'"INVALID_ARGUMENT", "details": [{"@type": "'
        + GOOGLE_RPC.encode()
        + b'ErrorInfo", "reason": "API_KEY_INVALID"}]}}]'
    )
    assert classify(400, {}, body).failure is Failure.AUTH


@pytest.mark.parametrize(
    "quota_id",
    ["GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "GenerateRequestsPerDayPerProjectPerModel-FreeTier"],
)
def test_googles_retry_info_and_per_day_quotas_steer_the_cooldown_on_the_openai_compatible_api(quota_id):
    details = [
        {"@type": GOOGLE_RPC + "QuotaFailure", "violations": [{"quotaId": quota_id}]},
        {"@type": GOOGLE_RPC + "RetryInfo", "retryDelay": "9s"},
    ]
    body = json.dumps(
        [{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded.", "details": details}}]
    )
    error = classify(429, {}, body.encode())
    assert error.failure is Failure.RATE_LIMITED
    if "PerDay" in quota_id:
        assert error.retry_after_s == pytest.approx(seconds_to_quota_day_end(), abs=5)
    else:
        assert error.retry_after_s == 9


async def test_a_429_carries_its_rate_limit_headers_for_the_quota_ledger(sim, adapter):
    sim.reset("quota-429")
    sim.set_behaviour("quota-429", {"type": "429", "retry_after": 7})
    error = await failure_of(adapter.request(candidate(sim.base_url("quota-429")), SECRET, Operation.CHAT, BODY))
    assert error.failure is Failure.RATE_LIMITED
    assert error.headers["x-ratelimit-limit-requests"] == "30"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert "authorization" not in error.headers and "content-type" not in error.headers


def test_a_google_429_names_the_quota_that_ran_out():
    details = [{"@type": GOOGLE_RPC + "QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerDay-FreeTier"}]}]
    body = json.dumps({"error": {"code": 429, "message": "Quota exceeded.", "details": details}})
    assert classify(429, {}, body.encode()).quota_id == "GenerateRequestsPerDay-FreeTier"


async def test_answers_and_streams_expose_their_responses_rate_limit_headers(adapter):
    headers = {"x-ratelimit-remaining-tokens": "9000", "x-request-id": "not-a-quota-header"}

    async def answer(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        if (await request.json()).get("stream"):
            response = aiohttp.web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
            await response.prepare(request)
            chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
            await response.write(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())
            return response
        return aiohttp.web.json_response({"choices": [{"message": {"content": "hi"}}]}, headers=headers)

    app = aiohttp.web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    server = aiohttp.test_utils.TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        target = candidate(str(server.make_url("/v1")))
        whole = await adapter.request(target, SECRET, Operation.CHAT, BODY)
        assert whole.quota_headers == {"x-ratelimit-remaining-tokens": "9000"}
        async with adapter.stream(target, SECRET, {**BODY, "stream": True}) as events:
            assert events.quota_headers == {"x-ratelimit-remaining-tokens": "9000"}
            chunks = [c async for c in events]
            assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["hi"]
    finally:
        await server.close()
