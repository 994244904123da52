"""What an operator sees of a running stack: Prometheus metrics on every service, the routing state."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmagg.suite import SERVICES

from ..helpers import admin_call, arrivals, scenario, wait_for
from .test_cli import llmagg


@pytest.fixture(scope="module")
def client(stack, client_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=client_key, max_retries=0, timeout=30)


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus page: (name, labels) -> value."""
    with urllib.request.urlopen(url, timeout=10) as response:
        page = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_every_service_in_the_table_serves_its_grpc_metrics(stack, client):
    client.models.list()  # the router (and credentials' ext_authz)
    hello = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model="sim-fast/sim-small", messages=hello)  # ratelimit: the quota's lease
    assert (
        admin_call(stack, "GET", "/v1/admin/discovery/changes")[0] == 200
    )  # discovery (the router's watch never ends)
    assert admin_call(stack, "GET", "/v1/agents/threads")[0] == 200  # the agent
    for service in SERVICES:
        names = {name for name, _ in scrape(stack.metrics_url(service.name))}
        assert "llmagg_grpc_server_handled_total" in names, f"{service.name} exports no RPC metrics"


def test_a_fallback_shows_in_the_metrics_the_routing_state_and_llmagg_status(stack, client, simulator):
    """`watch-429` answers 429 with Retry-After 600: the router falls over to `watch-backup`, counts it,
    and keeps the account cooling for the rest of the session (so this runs once per stack)."""
    providers = scenario(simulator, "watched-fallback")
    before = scrape(stack.metrics_url("router"))
    client.chat.completions.create(model="watched-fallback", messages=[{"role": "user", "content": "hi"}])
    assert arrivals(simulator, providers) == ["watch-429", "watch-backup"]

    attempt = {"operation": "chat", "model": "sim-small"}
    served = {**attempt, "provider": "watch-backup", "outcome": "ok"}

    # The router counts a request after it has answered it: the scrape may come a moment earlier.
    def counted() -> dict | None:
        page = scrape(stack.metrics_url("router"))
        counter = "llmagg_router_attempts_total"
        return page if sample(page, counter, **served) > sample(before, counter, **served) else None

    after = wait_for(counted, "the served attempt in the router's metrics")

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("llmagg_router_attempts_total", **served) == 1
    assert grew("llmagg_router_attempts_total", **attempt, provider="watch-429", outcome="rate_limited") == 1
    assert grew("llmagg_router_fallbacks_total", reason="rate_limited") == 1
    assert sample(after, "llmagg_router_cooling_accounts", provider="watch-429") == 1

    status, state = admin_call(stack, "GET", "/v1/admin/routing")
    assert status == 200 and state["object"] == "routing_state"
    providers = {entry["provider"]: entry for entry in state["providers"]}
    [limited] = providers["watch-429"]["accounts"]
    assert limited["alias"] == "watch-429-acct" and limited["usable"] is True
    [cooling] = limited["cooling"]
    assert cooling["model"] == "sim-small" and 590 < cooling["remaining_s"] <= 600
    [healthy] = providers["watch-backup"]["accounts"]
    assert healthy["cooling"] == []
    [model] = providers["watch-backup"]["models"]
    assert model["model"] == "sim-small" and model["circuit"]["state"] == "closed" and model["latency_ms"] > 0

    printed = llmagg(stack, "status")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0].split() == ["PROVIDER", "ACCOUNT", "MODEL", "STATE", "LATENCY"]
    watched = [line.split()[:4] for line in lines[2:] if line.startswith("watch-")]
    assert watched == [  # problems first
        ["watch-429", "watch-429-acct", "sim-small", "cooling"],
        ["watch-backup", "watch-backup-acct", "sim-small", "ok"],
    ]
    assert json.loads(llmagg(stack, "status", "--json").stdout)["object"] == "routing_state"


def test_the_routing_state_is_for_admin_keys_only(stack, client_key):
    status, body = admin_call(stack, "GET", "/v1/admin/routing", key=client_key)
    assert status == 403 and body["error"]["type"] == "permission_error"
