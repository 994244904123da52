"""The router's REST data path (ROUTER_HTTP_PORT) over a real loopback connection: the gateway's token
only, the OpenAI JSON or SSE with the route's headers, errors as OpenAI error JSON with their status and
retry headers, exactly as the gateway made them of the gRPC answers."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from prometheus_client import CollectorRegistry

from llmagg.common.http_server import HttpServer, Request
from llmagg.common.metrics import RpcMetrics
from llmagg.common.secrets import Secret
from llmagg_router.domain.affinity import Affinity
from llmagg_router.http_servicer import RouterHttp, error_body
from llmagg_router.servicer import RouterServicer, caller_headers, caller_of

from .helpers import content_chunks
from .test_router import rate_limited

TOKEN = "gateway-token-for-tests"
CHAT = {"model": "fast/llama-8b", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def port(make_router, upstream):
    router = make_router()
    registry = CollectorRegistry()
    handler = RouterHttp(
        RouterServicer(router, max_body_bytes=4096),
        {"gateway": Secret(TOKEN), "agent": Secret("agent-token")},
        RpcMetrics("router", registry),
    )
    server = HttpServer(handler.handle, error_body, 4096, admit=handler.admit)
    number = await server.start("127.0.0.1", 0)
    yield number, registry, server
    await server.stop(1)


async def exchange(port: int, path: str, body: bytes, token: str = TOKEN, **headers: str) -> tuple[int, dict, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = {"content-length": str(len(body)), "x-llmagg-service-token": token, **headers}
    lines = "".join(f"{name}: {value}\r\n" for name, value in head.items())
    writer.write(f"POST {path} HTTP/1.1\r\nhost: router\r\n{lines}\r\n".encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    answer_headers = {}
    while (line := await reader.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        answer_headers[name.lower()] = value.strip()
    if "content-length" in answer_headers:
        payload = await reader.readexactly(int(answer_headers["content-length"]))
    else:  # chunked: the pieces until the last (empty) one
        payload = b""
        while (size := int((await reader.readline()).strip(), 16)) > 0:
            payload += await reader.readexactly(size)
            await reader.readline()
        await reader.readline()
    writer.close()
    return int(status_line.split()[1]), answer_headers, payload


async def test_a_chat_is_answered_with_its_route_headers(port, upstream):
    status, headers, body = await exchange(
        port[0], "/v1/chat/completions", orjson.dumps(CHAT), **{"x-llmagg-client-id": "c1"}
    )
    assert status == 200 and headers["content-type"] == "application/json"
    assert (headers["x-llmagg-provider"], headers["x-llmagg-model"], headers["x-llmagg-attempts"]) == (
        "fast",
        "llama-8b",
        "1",
    )
    assert orjson.loads(body)["choices"][0]["message"]["content"] == "ok"
    assert upstream.attempted() == [("fast", upstream.calls[0][1])]


async def test_a_stream_is_sse_events_then_done(port, upstream):
    upstream.on("fast", content_chunks("Hel", "lo"))
    status, headers, body = await exchange(port[0], "/v1/chat/completions", orjson.dumps({**CHAT, "stream": True}))
    assert status == 200 and headers["content-type"] == "text/event-stream" and headers["x-llmagg-provider"] == "fast"
    events = [event for event in body.split(b"\n\n") if event]
    assert events[-1] == b"data: [DONE]"
    text = "".join(orjson.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text == "Hello"
    assert upstream.streams_closed == 1


async def test_every_account_rate_limited_is_a_429_with_retry_after(port, upstream):
    upstream.on("fast", rate_limited(20), rate_limited(30))
    status, headers, body = await exchange(port[0], "/v1/chat/completions", orjson.dumps(CHAT))
    assert status == 429 and headers["retry-after"] == "20" and headers["retry-after-ms"] == "20000"
    error = orjson.loads(body)["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [(b"{not json", 400, "invalid_json"), (b"x" * 5000, 413, "request_too_large"), (b'{"model": 5}', 400, None)],
)
async def test_bad_bodies_are_openai_errors_and_reach_no_provider(port, upstream, body, status, code):
    answered, _, payload = await exchange(port[0], "/v1/chat/completions", body)
    error = orjson.loads(payload)["error"]
    assert answered == status and error["type"] == "invalid_request_error"
    assert code is None or error["code"] == code
    assert upstream.calls == []


@pytest.mark.parametrize("token", ["", "agent-token", "wrong"])
async def test_only_the_gateways_token_is_served(port, upstream, token):
    status, _, payload = await exchange(port[0], "/v1/chat/completions", orjson.dumps(CHAT), token=token)
    assert status == 401 and orjson.loads(payload)["error"]["code"] == "missing_service_token"
    assert upstream.calls == []


async def test_other_paths_are_404_and_each_request_is_counted_by_path_and_status(port, upstream):
    status, _, payload = await exchange(port[0], "/v1/models", b"{}")
    assert status == 404 and orjson.loads(payload)["error"]["code"] == "unknown_url"
    await exchange(port[0], "/v1/chat/completions", orjson.dumps(CHAT))
    upstream.on("fast", rate_limited(20), rate_limited(30))
    await exchange(port[0], "/v1/chat/completions", orjson.dumps(CHAT))
    samples = {
        (s.labels["method"], s.labels["code"]): s.value
        for family in port[1].collect()
        for s in family.samples
        if s.name == "llmagg_grpc_server_handled_total"
    }
    assert samples == {("/v1/chat/completions", "RESOURCE_EXHAUSTED"): 1.0, ("/v1/chat/completions", "OK"): 1.0}


async def test_a_stream_the_client_leaves_is_closed_upstream_and_counted_cancelled(port, upstream):
    upstream.on("fast", [*content_chunks("Hel"), 30.0, *content_chunks("lo")])  # a pause after the first
    reader, writer = await asyncio.open_connection("127.0.0.1", port[0])
    body = orjson.dumps({**CHAT, "stream": True})
    head = f"content-length: {len(body)}\r\nx-llmagg-service-token: {TOKEN}\r\n"
    writer.write(f"POST /v1/chat/completions HTTP/1.1\r\n{head}\r\n".encode() + body)
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    await reader.readuntil(b"data: ")  # the first event came: the client leaves in the pause
    writer.close()

    def cancelled() -> float:
        return sum(
            s.value
            for family in port[1].collect()
            for s in family.samples
            if s.name == "llmagg_grpc_server_handled_total" and s.labels["code"] == "CANCELLED"
        )

    await asyncio.wait_for(port[2].stop(5), 10)  # waits for the requests under way to end
    assert (upstream.streams_closed, cancelled()) == (1, 1.0)


@pytest.fixture
def remembered(make_router, clock):
    """A data port's handler over a router with session affinity, and the sessions it has remembered so far."""
    router = make_router(affinity=Affinity(ttl_s=600, clock=clock))
    sessions: list[bytes] = []
    remember = router.affinity.remember
    router.affinity.remember = lambda session, candidate: (sessions.append(session), remember(session, candidate))
    return RouterHttp(RouterServicer(router, max_body_bytes=4096), {"gateway": Secret(TOKEN)}), sessions


def stream_request() -> Request:
    body = orjson.dumps({**CHAT, "user": "alice", "stream": True})
    return Request("POST", "/v1/chat/completions", {"x-llmagg-service-token": TOKEN}, body)


async def test_a_streams_learning_runs_once_its_first_event_is_written(remembered, upstream):
    handler, sessions = remembered
    upstream.on("fast", content_chunks("Hel", "lo"))
    response = await handler.handle(stream_request())
    assert sessions == []  # the answer has not gone out yet
    events = aiter(response.stream)
    assert b'"role"' in await anext(events)
    assert sessions == []  # the server writes the first event before it asks for the next
    assert b'"Hel"' in await anext(events)
    assert len(sessions) == 1
    await response.stream.aclose()
    assert len(sessions) == 1


@pytest.mark.parametrize("taken", [0, 1])
async def test_a_stream_closed_early_runs_its_learning_once_when_it_closes(remembered, upstream, taken):
    handler, sessions = remembered
    response = await handler.handle(stream_request())
    for _ in range(taken):
        await anext(aiter(response.stream))
    await response.stream.aclose()
    await response.stream.aclose()
    assert (len(sessions), upstream.streams_closed) == (1, 1)


def test_the_caller_is_read_from_its_few_headers_as_from_all_of_them():
    headers = {
        "host": "router",
        "content-type": "application/json",
        "x-provider-api-key": " sk-own-FAKE-0123456789 ",
        "x-llmagg-client-id": "key_abc",
        "x-session-id": " s-1 ",
        "x-llmagg-max-wait": "5",
        "x-llmagg-hedge": "ON",
        "x-request-id": "r-1",
    }
    own_key, caller = caller_of(caller_headers(headers))
    assert (own_key, caller) == caller_of(headers.items())
    assert own_key is not None and own_key.reveal() == "sk-own-FAKE-0123456789"
    assert (caller.client_id, caller.session, caller.max_wait_s, caller.hedge) == ("key_abc", "s-1", 5.0, True)
    assert caller_of(caller_headers({"host": "router"})) == caller_of([])
