"""Replies Envoy makes itself are OpenAI-shaped too: oversized bodies, and a router that is down."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from ..helpers import ADMIN_KEY, ROUTER_TEST_ENV, create_client_key, post_raw, scenario, wait_for

AUTHORIZED = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_a_body_over_the_limit_is_a_413_in_openai_shape(stack):
    oversized = b'{"model": "auto", "messages": [{"role": "user", "content": "' + b"x" * (33 * 1024 * 1024) + b'"}]}'
    status, _, body = post_raw(f"{stack.base_url}/chat/completions", oversized, AUTHORIZED)
    assert status == 413
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "request_too_large"


def stack_without(make_stack, tmp_path, name: str):
    """A stack whose service `name` is stopped once Envoy has found it healthy."""
    with make_stack(tmp_path).running({"LLMAGG_ADMIN_KEY": ADMIN_KEY}) as stack:
        [process] = [p for p in stack.processes if p.name == name]
        stack.processes.remove(process)
        process.stop()
        yield stack


@pytest.fixture
def stack_without_router(tmp_path, make_stack):
    yield from stack_without(make_stack, tmp_path, "router")


def test_a_router_that_is_down_is_a_503_in_openai_shape(stack_without_router):
    status, _, body = post_raw(f"{stack_without_router.base_url}/chat/completions", b'{"model": "auto"}', AUTHORIZED)
    assert status == 503
    assert body["error"]["type"] == "service_unavailable_error"
    assert body["error"]["code"] == "gateway_upstream_unavailable"


@pytest.fixture
def stack_without_credentials(tmp_path, make_stack):
    """Credentials stopped after a client key was made (the gateway's table has its hash)."""
    with make_stack(tmp_path).running({"LLMAGG_ADMIN_KEY": ADMIN_KEY}) as stack:
        key = create_client_key(stack, "made before the outage")
        [process] = [p for p in stack.processes if p.name == "credentials"]
        stack.processes.remove(process)
        process.stop()
        yield stack, key


def test_with_the_key_checker_down_admin_routes_are_refused_and_keys_are_checked_from_the_last_table(
    stack_without_credentials,
):
    stack, key = stack_without_credentials
    admin = {"Authorization": AUTHORIZED["Authorization"]}
    status, _, body = post_raw(f"{stack.base_url}/admin/keys", b'{"name": "x"}', admin)
    assert status == 503, body  # fail closed: ext_authz's status_on_error, never the service
    assert body["error"]["type"] == "service_unavailable_error"
    assert body["error"]["code"] == "gateway_upstream_unavailable"  # Envoy's own reply, not the router's
    assert "retry" in body["error"]["message"], body  # says what happened and what to do, never empty

    def chat(authorization: str) -> tuple[int, dict]:
        status, _, body = post_raw(
            f"{stack.base_url}/chat/completions", b'{"model": "auto"}', {"Authorization": authorization}
        )
        return status, body

    # Model routes: the gateway checks keys itself against the last table it was sent.
    status, body = chat(f"Bearer {key}")
    assert status == 400 and body["error"]["param"] == "messages", body  # passed the key check, reached the router
    status, body = chat(f"Bearer {key[:-4]}XXXX")  # a known id, a wrong secret: refused there
    assert status == 401 and body["error"]["code"] == "invalid_api_key", body
    # An id the table does not know may be a key made a moment ago on another replica, and the test
    # stack's short environment admin key is never hashed into Envoy: only the credentials service can
    # tell, so both are a 503 to retry, never a 401.
    for authorization in ("Bearer sk-llmagg-0123456789ab-FAKE", AUTHORIZED["Authorization"]):
        status, body = chat(authorization)
        assert status == 503 and body["error"]["code"] == "gateway_upstream_unavailable", body


@pytest.fixture
def stack_without_ratelimit(tmp_path, make_stack, router_config):
    env = {**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config), "RATELIMIT_CLIENT_RPM": "1000"}
    with make_stack(tmp_path).running(env) as stack:
        assert stack.client_limits  # the gateway asks ratelimit about every client key's request
        stack.limited_key = create_client_key(stack, "limited")
        [process] = [p for p in stack.processes if p.name == "ratelimit"]
        stack.processes.remove(process)
        process.stop()
        yield stack


def test_with_ratelimit_down_client_limits_fail_open_and_the_router_routes_unmetered(
    stack_without_ratelimit, simulator
):
    scenario(simulator, "chat-model")
    body = b'{"model": "chat-model", "messages": [{"role": "user", "content": "hi"}]}'
    authorization = {"Authorization": f"Bearer {stack_without_ratelimit.limited_key}"}
    status, headers, answer = post_raw(f"{stack_without_ratelimit.base_url}/chat/completions", body, authorization)
    assert status == 200, answer  # GATEWAY_CLIENT_LIMITS_FAILURE=open (the default)
    assert headers["x-llmagg-provider"] == "sim-fast" and len(simulator.requests("sim-fast")) == 1
    assert "quota ledger unreachable, routing unmetered" in (stack_without_ratelimit.run_dir / "router.log").read_text()


def gateway_health_answer(stack) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports.gateway}/health", timeout=10) as response:
            return response.status, response.headers["content-type"], json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], json.loads(error.read())


def gateway_health(stack) -> int:
    return gateway_health_answer(stack)[0]


def test_the_gateway_answers_health_without_a_key_while_every_service_is_up(stack):
    assert gateway_health_answer(stack) == (200, "application/json", {"status": "ok"})


def test_the_gateway_reports_unhealthy_once_a_service_has_no_healthy_replica(stack_without_router):
    wait_for(lambda: gateway_health(stack_without_router) == 503, "Envoy to find the router gone")
    assert gateway_health_answer(stack_without_router)[1:] == (
        "application/json",
        {
            "error": {
                "message": "A service of the suite has no healthy replica.",
                "type": "service_unavailable_error",
                "param": None,
                "code": "gateway_unhealthy",
            }
        },
    )


def _invalid(message: str, code: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        (
            "POST", "/v1/admin/accounts", b"{bad",
            _invalid(
                "We could not parse the JSON body of your request (Unexpected end of string. Expected : between "
                "key:value pair.). The body must be a JSON object.",
                "invalid_json",
            ),
        ),
        (
            "POST", "/v1/admin/accounts", b'{"provider": "sim-fast", "priority": "high"}',
            _invalid('Invalid type for `priority`: expected an integer, got "high".', "invalid_type", "priority"),
        ),
        (
            "POST", "/v1/agents/code/invoke", b'{"instruction": 5}',
            _invalid("Invalid type for `instruction`: expected a string, got 5.", "invalid_type", "instruction"),
        ),
        ("PATCH", "/v1/admin/accounts/some-alias", b"[1]", _invalid("The request body must be a JSON object.", "invalid_body")),
        (
            "GET", "/v1/agents/threads?limit=abc", None,
            _invalid('Invalid type for `limit`: expected an integer, got "abc".', "invalid_type", "limit"),
        ),
    ],
)  # fmt: skip
def test_a_body_or_query_the_transcoder_cannot_read_is_a_400_in_openai_shape(stack, method, path, body, expected):
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.ports.gateway}{path}",
        data=body,
        method=method,
        headers={**AUTHORIZED, "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert (caught.value.code, caught.value.headers["content-type"]) == (400, "application/json")
    assert json.loads(caught.value.read()) == expected
