"""Promise 5: bad input, from a client or an upstream, never gives a 500 or an empty body."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from llmagg_devstack import SimulatorProcess

from ..helpers import wait_for
from .helpers import openai_error, provider, start_stack

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def simulator():
    with SimulatorProcess() as sim:
        yield sim


@pytest.fixture(scope="module")
def stack(tmp_path_factory, hostile, simulator, make_stack):
    providers = [provider("backup", simulator.base_url("backup"), "backup", speed=1)]
    for behaviour in ("retry-inf", "retry-nan", "huge-line", "deep-answer"):
        providers += [
            provider(behaviour, hostile.base_url(behaviour), behaviour, speed=5),
            provider(f"{behaviour}-backup", simulator.base_url(f"{behaviour}-backup"), behaviour, speed=1),
        ]
    providers.append(provider("retry-1e300", hostile.base_url("retry-1e300"), "retry-1e300", speed=5))
    stack = start_stack(
        make_stack, tmp_path_factory.mktemp("bad-input"), providers, env={"ROUTER_DEFAULT_COOLDOWN_S": "1"}
    )
    yield stack
    stack.stop()


def call(stack, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        f"{stack.base_url}/chat/completions", data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def chat(model: str, **fields) -> bytes:
    return json.dumps({"model": model, "messages": HELLO, **fields}).encode()


@pytest.mark.parametrize("depth", [129, 254, 255, 500, 1023, 1024, 1025, 5000])
def test_json_nested_too_deeply_is_a_400_at_every_depth(stack, depth):
    body = chat("backup").replace(b'"model"', b'"metadata": ' + b"[" * depth + b"]" * depth + b', "model"', 1)
    status, _, payload = call(stack, body)
    assert status == 400
    assert openai_error(payload)["code"] == "invalid_json"


def test_json_nested_within_the_limit_is_served(stack):
    body = chat("backup").replace(b'"model"', b'"metadata": ' + b"[" * 100 + b"]" * 100 + b', "model"', 1)
    assert call(stack, body)[0] == 200


@pytest.mark.parametrize("kilobytes", [8, 16, 40, 59])
def test_large_request_headers_up_to_the_gateways_limit_are_served(stack, kilobytes):
    status, _, _ = call(stack, chat("backup"), {"x-large": "h" * (kilobytes * 1024)})
    assert status == 200


def test_request_headers_over_the_limit_are_a_431_in_openai_shape(stack):
    status, _, payload = call(stack, chat("backup"), {"x-large": "h" * (70 * 1024)})
    assert status == 431
    assert openai_error(payload)["code"] == "request_headers_too_large"


@pytest.mark.parametrize("behaviour", ["retry-inf", "retry-nan"])
def test_a_retry_after_that_is_not_a_number_cools_for_the_default_then_the_account_returns(stack, hostile, behaviour):
    status, headers, _ = call(stack, chat(behaviour))
    assert status == 200 and headers["x-llmagg-attempts"] == "2"  # fell over to the backup
    called = sum(1 for path, _ in hostile.requests if path.startswith(f"/{behaviour}/"))

    def tried_again() -> bool:
        call(stack, chat(behaviour))
        return sum(1 for path, _ in hostile.requests if path.startswith(f"/{behaviour}/")) > called

    wait_for(tried_again, f"{behaviour} to be tried again after the default cooldown")


def test_an_absurd_retry_after_is_capped_at_a_day(stack):
    status, headers, payload = call(stack, chat("retry-1e300"))
    assert status == 429
    assert headers["retry-after"] == "86400"
    assert openai_error(payload)["code"] == "rate_limit_exceeded"


def test_a_stream_line_over_the_limit_is_an_upstream_failure_that_falls_over(stack):
    status, headers, payload = call(stack, chat("huge-line", stream=True))
    assert status == 200 and headers["x-llmagg-provider"] == "huge-line-backup"
    assert payload.rstrip().endswith(b"data: [DONE]")


def test_an_upstream_answer_nested_too_deeply_falls_over(stack):
    status, headers, _ = call(stack, chat("deep-answer"))
    assert status == 200 and headers["x-llmagg-provider"] == "deep-answer-backup"


def raw_http(stack, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", stack.ports.gateway), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /v1/models HTTP/1.0\r\nHost: x\r\n\r\n", 426, "http_version_not_supported"),
        (b"GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "unknown_url"),
        (b"DELETE /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "unknown_url"),
        (b"NONSENSE\r\n\r\n", 400, "http1.codec_error"),
    ],
)
def test_replies_the_gateway_makes_itself_are_openai_shaped(stack, request_bytes, status, code):
    head, _, body = raw_http(stack, request_bytes).partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode()
    assert openai_error(body)["code"] == code


def test_a_rest_answer_carries_no_grpc_headers(stack):
    with urllib.request.urlopen(f"{stack.base_url}/models", timeout=30) as response:
        assert not [name for name in response.headers if name.lower().startswith("grpc-")]
