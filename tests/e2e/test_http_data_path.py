"""POSTs to /v1/chat/completions and /v1/embeddings are proxied untranscoded over HTTP/1.1 to the router's
HTTP data port (Envoy's `router-http` cluster); every other request, these paths with a query string
included, keeps the transcoder and the router's gRPC port. Envoy's access log names the cluster that served."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest

from ..helpers import post_raw, wait_for

HELLO = [{"role": "user", "content": "Hello!"}]
ROUTER = "/llmagg.router.v1.RouterService/"


@pytest.fixture(scope="module")
def client(stack, client_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=client_key, max_retries=0, timeout=30)


def served_by(stack, request_id: str) -> tuple[str, str, str]:
    """(the path the client asked for, the cluster that served it, the path sent upstream) from Envoy's access log."""
    line = wait_for(
        lambda: next(
            (x for x in stack.process("gateway").output().splitlines() if request_id in x and x.startswith("{")), None
        ),
        f"Envoy's access log line of {request_id}",
    )
    logged = json.loads(line)
    return logged["path"], logged["upstream"], logged["rpc"]


def test_a_chat_goes_to_the_routers_http_port_with_the_gateways_headers(client, stack):
    raw = client.chat.completions.with_raw_response.create(model="sim-fast/sim-small", messages=HELLO)
    assert raw.parse().choices[0].message.content == "Hello from sim-fast (sim-small)."
    assert raw.headers["x-llmagg-provider"] == "sim-fast" and raw.headers["x-llmagg-attempts"] == "1"
    assert raw.headers["content-type"] == "application/json" and raw.headers["cache-control"] == "no-store"
    assert not [h for h in raw.headers if h.startswith("grpc-")]
    path = "/v1/chat/completions"
    assert served_by(stack, raw.headers["x-request-id"]) == (path, "router-http", path)


def test_a_streamed_chat_goes_there_too(client, stack):
    raw = client.chat.completions.with_raw_response.create(model="chat-model", messages=HELLO, stream=True)
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert served_by(stack, raw.headers["x-request-id"])[1] == "router-http"


def test_embeddings_go_there_too(client, stack):
    raw = client.embeddings.with_raw_response.create(model="sim-fast/sim-embed", input="hello")
    assert len(raw.parse().data) == 1 and raw.headers["x-llmagg-provider"] == "sim-fast"
    assert served_by(stack, raw.headers["x-request-id"]) == ("/v1/embeddings", "router-http", "/v1/embeddings")


def test_with_a_query_string_a_chat_is_still_transcoded_to_the_grpc_method(stack, client_key):
    body = json.dumps({"model": "sim-fast/sim-small", "messages": HELLO}).encode()
    status, headers, answer = post_raw(
        f"{stack.base_url}/chat/completions?trace=1", body, {"Authorization": f"Bearer {client_key}"}
    )
    assert status == 200 and answer["choices"][0]["message"]["content"] == "Hello from sim-fast (sim-small)."
    path, cluster, rpc = served_by(stack, headers["x-request-id"])
    assert (path, cluster) == ("/v1/chat/completions?trace=1", "router")
    assert rpc.startswith(ROUTER)


def test_the_http_data_path_checks_the_client_key_like_every_route(stack):
    body = json.dumps({"model": "sim-fast/sim-small", "messages": HELLO}).encode()
    for path in ("/chat/completions", "/embeddings"):
        status, _, refused = post_raw(f"{stack.base_url}{path}", body)
        assert status == 401 and refused["error"]["code"] == "missing_api_key", path
        status, _, refused = post_raw(f"{stack.base_url}{path}", body, {"Authorization": "Bearer sk-llmagg-nope"})
        assert status == 401, path


def test_a_nested_stream_key_is_no_stream(client, stack):
    raw = client.chat.completions.with_raw_response.create(
        model="sim-fast/sim-small", messages=HELLO, extra_body={"metadata": {"stream": True}}
    )
    assert raw.parse().choices[0].message.content == "Hello from sim-fast (sim-small)."


def test_a_stream_asked_for_with_an_escaped_key_is_streamed(stack, client_key):
    body = b'{"model": "chat-model", "messages": [{"role": "user", "content": "echo: one two"}], "\\u0073tream": true}'
    status, headers, text = post_raw_text(f"{stack.base_url}/chat/completions", body, client_key)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "one two"
    assert headers["x-llmagg-provider"] == "sim-fast"
    assert served_by(stack, headers["x-request-id"])[1] == "router-http"


def test_a_large_body_takes_the_data_path(client, stack):
    long = [{"role": "user", "content": "x" * 70_000}]
    raw = client.chat.completions.with_raw_response.create(model="sim-fast/sim-small", messages=long)
    assert raw.parse().choices[0].message.content == "Hello from sim-fast (sim-small)."
    assert served_by(stack, raw.headers["x-request-id"])[1] == "router-http"


def test_the_unary_binding_called_directly_is_checked_like_every_route(stack, client_key):
    body = json.dumps({"model": "sim-fast/sim-small", "messages": HELLO}).encode()
    status, _, refused = post_raw(f"{stack.base_url}/chat/completions:unary", body)
    assert status == 401 and refused["error"]["code"] == "missing_api_key"
    status, _, answer = post_raw(
        f"{stack.base_url}/chat/completions:unary", body, {"Authorization": f"Bearer {client_key}"}
    )
    assert status == 200 and answer["choices"][0]["message"]["content"] == "Hello from sim-fast (sim-small)."


def post_raw_text(url: str, data: bytes, key: str) -> tuple[int, dict, str]:
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()


def test_a_body_over_the_limit_is_a_413_on_every_path(stack, client_key):
    oversized = b'{"model": "auto", "messages": [{"role": "user", "content": "' + b"x" * (33 * 1024 * 1024) + b'"}]}'
    authorized = {"Authorization": f"Bearer {client_key}"}
    for path in ("/chat/completions", "/embeddings", "/chat/completions:unary", "/embeddings:unary"):
        status, _, body = post_raw(f"{stack.base_url}{path}", oversized, authorized)
        assert status == 413, path
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "request_too_large"
