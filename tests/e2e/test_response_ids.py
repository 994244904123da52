"""Which ids a response carries, whatever answered it (the service, Envoy itself, the key check): the
request id always (every log line of the request carries it), the trace id whenever tracing is on."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from llmagg_devstack import Stack, span_receiver

from ..helpers import ADMIN_KEY, ROUTER_TEST_ENV

TRACE_ID = re.compile(r"[0-9a-f]{32}")
REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CHAT = b'{"model": "chat-model", "messages": [{"role": "user", "content": "hi"}]}'


def answers(stack: Stack, client_key: str) -> dict[str, tuple[int, dict[str, str]]]:
    """(status, headers) of one response of each kind, by who made it."""
    url = f"http://127.0.0.1:{stack.ports.gateway}"
    admin, client = {"Authorization": f"Bearer {ADMIN_KEY}"}, {"Authorization": f"Bearer {client_key}"}
    kinds = {
        "a chat served": ("POST", "/v1/chat/completions", CHAT, admin),
        "a model list": ("GET", "/v1/models", None, client),
        "no key (the key check)": ("POST", "/v1/chat/completions", CHAT, {}),
        "an admin route with a client key": ("GET", "/v1/admin/accounts", None, client),
        "an unknown route (Envoy)": ("GET", "/v1/nowhere", None, admin),
        "broken JSON (transcoding)": ("POST", "/v1/chat/completions", b"{not json", admin),
        "an unknown model (the router)": ("POST", "/v1/chat/completions", CHAT.replace(b"chat-model", b"nope"), admin),
    }
    found = {}
    for kind, (method, path, body, headers) in kinds.items():
        request = urllib.request.Request(
            url + path, data=body, method=method, headers={"Content-Type": "application/json", **headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                found[kind] = (response.status, {k.lower(): v for k, v in response.headers.items()})
        except urllib.error.HTTPError as error:
            found[kind] = (error.code, {k.lower(): v for k, v in error.headers.items()})
    return found


def statuses(found: dict[str, tuple[int, dict[str, str]]]) -> dict[str, int]:
    return {kind: status for kind, (status, _) in found.items()}


EXPECTED_STATUSES = {
    "a chat served": 200,
    "a model list": 200,
    "no key (the key check)": 401,
    "an admin route with a client key": 403,
    "an unknown route (Envoy)": 404,
    "broken JSON (transcoding)": 400,
    "an unknown model (the router)": 404,
}


def test_every_response_carries_its_request_id_and_no_empty_trace_id_when_tracing_is_off(stack, client_key):
    found = answers(stack, client_key)
    assert statuses(found) == EXPECTED_STATUSES
    assert {
        kind: bool(REQUEST_ID.fullmatch(headers.get("x-request-id", ""))) for kind, (_, headers) in found.items()
    } == {kind: True for kind in found}
    assert {kind: headers.get("x-trace-id") for kind, (_, headers) in found.items()} == {kind: None for kind in found}


@pytest.fixture(scope="module")
def traced_stack(router_config, tmp_path_factory, make_stack) -> Iterator[tuple[Stack, str]]:
    with span_receiver() as receiver:
        stack = make_stack(tmp_path_factory.mktemp("traced-ids"), otlp_endpoint=receiver.endpoint)
        env = {**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config), **receiver.environment()}
        with stack.running(env):
            from ..helpers import create_client_key

            yield stack, create_client_key(stack, "trace ids")


def test_every_response_carries_its_request_id_and_trace_id_when_tracing_is_on(traced_stack):
    stack, client_key = traced_stack
    found = answers(stack, client_key)
    assert statuses(found) == EXPECTED_STATUSES
    ids = {
        kind: (headers.get("x-request-id", ""), headers.get("x-trace-id", "")) for kind, (_, headers) in found.items()
    }
    assert {kind: (bool(REQUEST_ID.fullmatch(r)), bool(TRACE_ID.fullmatch(t))) for kind, (r, t) in ids.items()} == {
        kind: (True, True) for kind in found
    }
    assert len({trace for _, trace in ids.values()}) == len(found)  # one trace per request
