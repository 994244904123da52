"""The discovery service in the whole stack: the simulator's model list gains a model and loses one, and one
model starts answering 410; after a refresh the router routes to the new model without a restart, never to the
retired ones, and the change history shows all three. A provider answering garbage changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest

from llmagg.ratelimit.v1 import ratelimit_pb2 as rpb
from llmagg.ratelimit.v1 import ratelimit_pb2_grpc
from llmagg_devstack import grpc_serving, write_config

from ..helpers import ADMIN_KEY, SIM_KEY, SIM_KEY_ENV, admin_call, wait_for

LLMAGG = str(Path(sys.executable).with_name("llmagg"))
FAMILY = "disc-family"
NEW_MODEL = f"vendor/{FAMILY}:free"  # its id says which family it belongs to: discovery gives it the alias
DISCOVERY_ON = {
    "DISCOVERY_MODELS_INTERVAL_S": "3600",  # runs at start, then when asked (RefreshNow)
    "DISCOVERY_PROBE_INTERVAL_S": "3600",  # the first round waits an interval: only RefreshNow probes here
    "DISCOVERY_PROBE_BATCH": "20",
    "DISCOVERY_RETIRE_AFTER_S": "0",  # missing from its provider's list: retired at the next run
    "DISCOVERY_HTTP_TIMEOUT_S": "3",
}


@pytest.fixture(scope="module")
def discovery_stack(simulator, tmp_path_factory, make_stack):
    for name in ("disc-a", "disc-b"):
        simulator.reset(name)
    simulator.set_behaviour("disc-b", "malformed_json")  # garbage for everything, its model list included
    run_dir = tmp_path_factory.mktemp("discovery-stack")
    family = {"quality": 3, "context_window": 32768, "aliases": [FAMILY]}
    config = {
        "providers": [
            {
                "id": "disc-a",
                "name": "Simulated discovery provider",
                "base_url": simulator.base_url("disc-a"),
                "models": [{"id": "sim-small", **family}, {"id": "sim-large", **family}, {"id": "sim-embed", "type": "embedding"}],
            },
            {"id": "disc-b", "name": "Simulated garbage", "base_url": simulator.base_url("disc-b"), "models": ["sim-small"]},
        ],
        "accounts": [
            {"provider": "disc-a", "alias": "disc-a-acct", "api_key_env": SIM_KEY_ENV},
            {"provider": "disc-b", "alias": "disc-b-acct", "api_key_env": SIM_KEY_ENV},
        ],
    }  # fmt: skip
    env = {
        **DISCOVERY_ON,
        SIM_KEY_ENV: SIM_KEY,
        "LLMAGG_ADMIN_KEY": ADMIN_KEY,
        "LLMAGG_CONFIG": str(write_config(run_dir / "config.yaml", config)),
    }
    with make_stack(run_dir).running(env) as stack:
        yield stack


def chat(stack, model: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        f"{stack.base_url}/chat/completions",
        data=json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_KEY}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def listed_models(stack) -> set[str]:
    status, body = admin_call(stack, "GET", "/v1/models")
    assert status == 200, body
    return {entry["id"] for entry in body["data"]}


def routed_chat_models(simulator, name: str) -> list[str]:
    """The models the router asked `name` for (discovery's own requests carry its user agent)."""
    return [
        r["body"]["model"]
        for r in simulator.requests(name)
        if r["path"].endswith("/chat/completions")
        and "llm-aggregator-discovery" not in r["headers"].get("user-agent", "")
    ]


def refresh(stack, *sources: str) -> dict:
    status, body = admin_call(stack, "POST", "/v1/admin/discovery/refresh", {"sources": list(sources)})
    assert status == 200, body
    return body


def test_a_new_model_is_routed_to_and_the_gone_ones_never_again_without_a_restart(discovery_stack, simulator):
    stack = discovery_stack
    assert {"disc-a/sim-small", "disc-a/sim-large"} <= listed_models(stack)
    assert chat(stack, FAMILY)[0] == 200
    router_pid = next(p for p in stack.processes if p.name == "router").process.pid

    simulator.add_model("disc-a", {"id": NEW_MODEL, "context_length": 65536})
    simulator.remove_model("disc-a", "sim-large")
    simulator.set_model_behaviour("disc-a", "sim-small", "410")
    listed = refresh(stack, "models")
    assert {(c["kind"], c["model"]) for c in listed["changes"]} >= {
        ("CHANGE_KIND_ADDED", NEW_MODEL),
        ("CHANGE_KIND_RETIRED", "sim-large"),
    }
    probed = refresh(stack, "probe")
    assert ("CHANGE_KIND_RETIRED", "sim-small") in {(c["kind"], c["model"]) for c in probed["changes"]}

    # The router follows the catalogue over WatchCatalog: no restart, no request to discovery per chat.
    # Both revisions reach the router in order, each a moment after its refresh answered: wait for the last.
    def followed(models: set[str]) -> bool:
        return f"disc-a/{NEW_MODEL}" in models and not {"disc-a/sim-small", "disc-a/sim-large"} & models

    wait_for(lambda: followed(listed_models(stack)), "the new model in /v1/models, the retired ones gone")
    before = len(routed_chat_models(simulator, "disc-a"))
    for model in (FAMILY, "auto", FAMILY):
        status, headers, body = chat(stack, model)
        assert status == 200, body
        assert (headers["x-llmagg-provider"], headers["x-llmagg-model"]) == ("disc-a", NEW_MODEL)
    assert routed_chat_models(simulator, "disc-a")[before:] == [NEW_MODEL] * 3
    status, _, body = chat(stack, "disc-a/sim-small")
    assert (status, body["error"]["code"]) == (404, "model_retired")
    assert "HTTP 410" in body["error"]["message"]
    assert next(p for p in stack.processes if p.name == "router").process.pid == router_pid

    status, history = admin_call(stack, "GET", "/v1/admin/discovery/changes?since=1h&provider=disc-a")
    assert status == 200, history
    found = {(c["kind"], c["model"]): c for c in history["changes"]}
    assert {
        ("CHANGE_KIND_ADDED", NEW_MODEL),
        ("CHANGE_KIND_RETIRED", "sim-large"),
        ("CHANGE_KIND_RETIRED", "sim-small"),
    } <= set(found)
    assert found[("CHANGE_KIND_RETIRED", "sim-small")]["detail"] == "a probe found it gone: HTTP 410 Gone"
    assert found[("CHANGE_KIND_RETIRED", "sim-large")]["detail"].startswith("missing from models since")


def test_a_provider_answering_garbage_leaves_its_models_and_the_others_intact(discovery_stack):
    stack = discovery_stack
    refresh(stack, "models")
    status, body = admin_call(stack, "GET", "/v1/admin/discovery/catalog?provider=disc-b")
    assert status == 200, body
    assert [(m["model"], m["state"]) for m in body["catalog"]["models"]] == [("sim-small", "MODEL_STATE_ACTIVE")]
    models = next(s for s in body["sources"] if s["name"] == "models")
    assert "disc-b: the answer (HTTP 200) is not JSON" in models["last_error"]
    assert models["last_success_at"]  # disc-a's list was read all the same
    assert "disc-b/sim-small" in listed_models(stack)


def test_discovery_admin_routes_refuse_a_plain_key_and_bad_input(discovery_stack):
    stack = discovery_stack
    status, body = admin_call(stack, "POST", "/v1/admin/keys", {"name": "plain", "scope": "client"})
    plain = body["secret"]
    status, body = admin_call(stack, "GET", "/v1/admin/discovery/changes", key=plain)
    assert (status, body["error"]["code"]) == (403, "insufficient_scope")
    status, body = admin_call(stack, "GET", "/v1/admin/discovery/changes?since=last-tuesday")
    assert (status, body["error"]["code"]) == (400, "invalid_since")
    status, body = admin_call(stack, "POST", "/v1/admin/discovery/refresh", {"sources": ["nope"]})
    assert (status, body["error"]["code"]) == (400, "unknown_source")


def llmagg(stack, *args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "LLMAGG_URL": f"http://127.0.0.1:{stack.ports.gateway}", "LLMAGG_ADMIN_KEY": ADMIN_KEY}
    return subprocess.run([LLMAGG, *args], capture_output=True, text=True, timeout=60, env=environment, check=False)


def test_llmagg_models_list_changes_and_refresh(discovery_stack):
    listed = llmagg(discovery_stack, "models", "list", "--provider", "disc-b")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == [
        "PROVIDER",
        "MODEL",
        "STATE",
        "FREE",
        "CONTEXT",
        "QUALITY",
        "LIMITS",
        "EXPIRES",
    ]
    assert listed.stdout.splitlines()[2].split()[:4] == ["disc-b", "sim-small", "active", "yes"]
    free = json.loads(llmagg(discovery_stack, "models", "list", "--free", "--json").stdout)["catalog"]["models"]
    assert free and all(m["free"] for m in free)
    refreshed = llmagg(discovery_stack, "models", "refresh", "--source", "models")
    assert refreshed.returncode == 0, refreshed.stderr
    assert refreshed.stdout.startswith("catalogue revision ") and "models" in refreshed.stdout
    changes = llmagg(discovery_stack, "models", "changes", "--since", "7d", "--provider", "disc-a", "--json")
    assert changes.returncode == 0 and all(c["provider"] == "disc-a" for c in json.loads(changes.stdout)["changes"])
    refused = llmagg(discovery_stack, "models", "changes", "--since", "yesterday")
    assert refused.returncode == 1 and "invalid_since" in refused.stderr


def test_with_discovery_gone_the_router_routes_on_the_last_catalogue(discovery_stack, simulator):
    """Last in this module: it stops the stack's discovery service."""
    stack = discovery_stack
    wait_for(lambda: f"disc-a/{NEW_MODEL}" in listed_models(stack), "the new model in /v1/models")
    next(p for p in stack.processes if p.name == "discovery").stop()
    wait_for(
        lambda: not grpc_serving(stack.address("router"), "discovery"), "the router's discovery health NOT_SERVING", 30
    )
    assert grpc_serving(stack.address("router"))  # the router itself serves on
    status, headers, body = chat(stack, FAMILY)
    assert status == 200, body
    assert headers["x-llmagg-model"] == NEW_MODEL
    assert chat(stack, "disc-a/sim-small")[0] == 404  # still retired


@pytest.fixture(scope="module")
def limits_stack(tmp_path_factory, make_stack):
    """Ratelimit's own configuration knows no limit of lim-sim; discovery's (the catalogue's baseline) does."""
    run_dir = tmp_path_factory.mktemp("discovery-limits")
    provider = {"id": "lim-sim", "name": "Limits", "base_url": "http://127.0.0.1:9/v1", "models": [{"id": "m"}]}
    accounts = [{"provider": "lim-sim", "alias": "lim-acct", "api_key_env": SIM_KEY_ENV}]
    plain = write_config(run_dir / "config.yaml", {"providers": [provider], "accounts": accounts})
    limited = {"providers": [{**provider, "limits": {"rpd": 2}}], "accounts": accounts}
    env = {
        **DISCOVERY_ON,
        SIM_KEY_ENV: SIM_KEY,
        "LLMAGG_ADMIN_KEY": ADMIN_KEY,
        "LLMAGG_CONFIG": str(plain),
        "DISCOVERY_CONFIG": str(write_config(run_dir / "discovery.yaml", limited)),
    }
    with make_stack(run_dir).running(env, gateway=False) as stack:
        yield stack


def test_limits_in_the_catalogue_are_enforced_by_ratelimit(limits_stack):
    address = limits_stack.address("ratelimit")
    wait_for(lambda: grpc_serving(address, "discovery"), "ratelimit following the catalogue")
    token = (("x-llmagg-service-token", limits_stack.service_token("router", "ratelimit")),)
    key = rpb.QuotaKey(provider="lim-sim", account="lim-acct", model="m")
    with grpc.insecure_channel(address) as channel:
        stub = ratelimit_pb2_grpc.RatelimitServiceStub(channel)
        answers = [stub.Reserve(rpb.ReserveRequest(key=key, estimated_tokens=1), metadata=token) for _ in range(3)]
    assert [answer.granted for answer in answers] == [True, True, False]
    assert answers[2].reason == "rpd 2 on lim-sim/lim-acct"
