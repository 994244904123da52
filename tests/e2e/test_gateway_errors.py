"""Replies Envoy makes itself are OpenAI-shaped too: oversized bodies, and a router that is down."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from ..helpers import ADMIN_KEY, ROUTER_TEST_ENV, post_raw, scenario, wait_for

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
    yield from stack_without(make_stack, tmp_path, "credentials")


def test_with_the_key_checker_down_requests_are_refused_not_let_through(stack_without_credentials):
    status, _, body = post_raw(
        f"{stack_without_credentials.base_url}/chat/completions", b'{"model": "auto"}', AUTHORIZED
    )
    assert status == 503, body  # fail closed: ext_authz's status_on_error, never the router
    assert body["error"]["type"] == "service_unavailable_error"
    assert body["error"]["code"] == "gateway_upstream_unavailable"  # Envoy's own reply, not the router's


@pytest.fixture
def stack_without_ratelimit(tmp_path, make_stack, router_config):
    env = {**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config), "RATELIMIT_CLIENT_RPM": "1000"}
    with make_stack(tmp_path).running(env) as stack:
        assert stack.client_limits  # the gateway asks ratelimit about every request
        [process] = [p for p in stack.processes if p.name == "ratelimit"]
        stack.processes.remove(process)
        process.stop()
        yield stack


def test_with_ratelimit_down_client_limits_fail_open_and_the_router_routes_unmetered(
    stack_without_ratelimit, simulator
):
    scenario(simulator, "chat-model")
    body = b'{"model": "chat-model", "messages": [{"role": "user", "content": "hi"}]}'
    status, headers, answer = post_raw(f"{stack_without_ratelimit.base_url}/chat/completions", body, AUTHORIZED)
    assert status == 200, answer  # GATEWAY_CLIENT_LIMITS_FAILURE=open (the default)
    assert headers["x-llmagg-provider"] == "sim-fast" and len(simulator.requests("sim-fast")) == 1
    assert "quota ledger unreachable, routing unmetered" in (stack_without_ratelimit.run_dir / "router.log").read_text()


def gateway_health(stack) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports.gateway}/health", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_gateway_answers_health_without_a_key_while_every_service_is_up(stack):
    assert gateway_health(stack) == 200


def test_the_gateway_reports_unhealthy_once_a_service_has_no_healthy_replica(stack_without_router):
    wait_for(lambda: gateway_health(stack_without_router) == 503, "Envoy to find the router gone")
