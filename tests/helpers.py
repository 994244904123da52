"""What the cross-service suites share: the simulated providers' scenarios, keys and request-log helpers."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import openai

from llmagg_devstack import SimulatorProcess
from llmagg_discovery.adapters.community_source import SHIPPED_SNAPSHOT

SIM_KEY_ENV = "SIM_PROVIDER_KEY"
SIM_KEY = "sk-sim-e2e-FAKE-key"
# The admin key the test stacks are started with (LLMAGG_ADMIN_KEY); obviously fake.
ADMIN_KEY = "sk-test-FAKE-admin"

# provider id -> (startup behaviour, alias it serves, speed). Higher speed is tried first, so each
# alias below names a scenario: its providers are tried in the order listed here.
SCENARIOS: dict[str, tuple[dict | None, str, int]] = {
    "sim-fast": (None, "chat-model", 5),
    "rl-first": ({"type": "429", "retry_after": 30}, "fallback-429", 5),
    "rl-backup": (None, "fallback-429", 1),
    "chain-429": ({"type": "429", "retry_after": 30}, "chain-only", 5),
    "step-429": ({"type": "429", "retry_after": 30}, "three-step", 5),
    "step-500": ({"type": "500"}, "three-step", 4),
    "step-ok": (None, "three-step", 3),
    "fail-a": ({"type": "500"}, "all-fail", 5),
    "fail-b": ({"type": "503"}, "all-fail", 4),
    "rl-only": ({"type": "429", "retry_after": 7}, "all-429", 5),
    "cut-late": ({"type": "cut_stream", "after_chunks": 2}, "cut-late", 5),
    "cut-late-backup": (None, "cut-late", 1),
    "cut-early": ({"type": "cut_stream", "after_chunks": 0}, "cut-early", 5),
    "cut-early-backup": (None, "cut-early", 1),
    "hang": ({"type": "hang"}, "hang", 5),
    "hang-backup": (None, "hang", 1),
    "garbled": ({"type": "malformed_json"}, "garbled", 5),
    "garbled-backup": (None, "garbled", 1),
    "reject-400": ({"type": "400"}, "bad-request", 5),
    "reject-400-backup": (None, "bad-request", 1),
    "bad-key": ({"type": "401"}, "bad-key", 5),
    "bad-key-backup": (None, "bad-key", 1),
    "enable-again": ({"type": "401"}, "enable-again", 5),  # rejected, fixed, then enabled by an admin
    "enable-again-backup": (None, "enable-again", 1),
    "usage-429": ({"type": "429", "retry_after": 30}, "usage-three", 5),  # one request, three attempts
    "usage-500": ({"type": "500"}, "usage-three", 4),
    "usage-ok": (None, "usage-three", 3),
    "watch-429": ({"type": "429", "retry_after": 600}, "watched-fallback", 5),
    "watch-backup": (None, "watched-fallback", 1),
    "or-down": ({"type": "503"}, "openrouter-first", 5),
    "or-next": (None, "openrouter-next", 5),
    "sticky": (None, "sticky-model", 5),  # two accounts: see EXTRA_ACCOUNTS
    "wait-once": (None, "wait-model", 5),
    "hedge-slow": ({"type": "slow_first_byte", "delay_s": 20}, "hedged-model", 5),
    "hedge-quick": (None, "hedged-model", 1),
    "agent-sim": (None, "agent-model", 1),  # the model the agent service asks for (AGENT_TEST_ENV)
    "agent-no-tools": (None, "agent-model", 5),  # tried first, but its model cannot call tools (MODEL_FIELDS)
}
# Accounts beyond the one every scenario provider gets.
EXTRA_ACCOUNTS = [{"provider": "sticky", "alias": "sticky-2", "api_key_env": SIM_KEY_ENV}]
# Registry fields of a scenario's model beyond the defaults.
MODEL_FIELDS: dict[str, dict] = {"agent-no-tools": {"capabilities": []}}

ROUTER_TEST_ENV = {
    SIM_KEY_ENV: SIM_KEY,
    "LLMAGG_ADMIN_KEY": ADMIN_KEY,
    "ROUTER_READ_TIMEOUT_S": "1.5",  # the `hang` scenario falls over after this
    "ROUTER_LOG_LEVEL": "INFO",
    "ROUTER_HEDGE_DELAY_S": "0.3",  # a hedged request starts its next candidate after this
}


# The agent asks for `agent-model`: only agent-sim serves it, so agent tests script that one provider.
AGENT_TEST_ENV = {"AGENT_MODEL": "agent-model", "AGENT_LOG_LEVEL": "INFO"}
# The discovery service of every test stack: the community list from the snapshot its package ships, no
# model lists, account checks or probes (their requests would land in the scenario providers' logs and
# fault queues). The discovery tests turn them on for providers of their own.
DISCOVERY_TEST_ENV = {
    "DISCOVERY_COMMUNITY_URL": str(SHIPPED_SNAPSHOT),
    "DISCOVERY_MODELS_INTERVAL_S": "0",
    "DISCOVERY_ACCOUNTS_INTERVAL_S": "0",
    "DISCOVERY_PROBE_INTERVAL_S": "0",
}


def startup_behaviours() -> dict[str, dict]:
    """What each scenario provider does from the start (and again after a reset)."""
    return {name: behaviour for name, (behaviour, _, _) in SCENARIOS.items() if behaviour}


def routing_config(simulator: SimulatorProcess) -> dict:
    providers = []
    for name, (_, alias, speed) in SCENARIOS.items():
        models = [
            {"id": "sim-small", "quality": 3, "context_window": 32768, "aliases": [alias], **MODEL_FIELDS.get(name, {})}
        ]
        if name == "sim-fast":
            models.append({"id": "sim-embed", "type": "embedding", "context_window": 8192, "aliases": ["embed-model"]})
        providers.append(
            {
                "id": name,
                "name": f"Simulated {name}",
                "base_url": simulator.base_url(name),
                "speed": speed,
                "models": models,
            }
        )
    return {
        "providers": providers,
        "accounts": [{"provider": p["id"], "alias": f"{p['id']}-acct", "api_key_env": SIM_KEY_ENV} for p in providers]
        + EXTRA_ACCOUNTS,
        "fallback_chains": {
            "e2e-chain": [
                {"provider": "chain-429", "model": "sim-small"},
                {"provider": "sim-fast", "model": "sim-small"},
            ]
        },
    }


def scenario(simulator: SimulatorProcess, alias: str) -> list[str]:
    """The providers serving `alias`, request logs emptied, in the order they are meant to be tried."""
    names = [name for name, (_, served, _) in SCENARIOS.items() if served == alias]
    for name in names:
        simulator.reset(name)
    return names


def arrivals(simulator: SimulatorProcess, providers: list[str]) -> list[str]:
    """Which of `providers` the simulator was called as, in the order the calls arrived."""
    logged = [(request["seq"], name) for name in providers for request in simulator.requests(name)]
    return [name for _, name in sorted(logged)]


def admin_call(stack, method: str, path: str, body: dict | None = None, key: str = ADMIN_KEY) -> tuple[int, dict]:
    """One admin REST call through the gateway: (status, JSON body)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.ports.gateway}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def create_client_key(stack, name: str = "tests", scope: str = "client") -> str:
    status, body = admin_call(stack, "POST", "/v1/admin/keys", {"name": name, "scope": scope})
    assert status == 200, body
    return body["secret"]


def post_raw(url: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    """A POST the SDK would never send (broken JSON, oversized), answered as (status, headers, JSON body)."""
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 15) -> Any:
    """Poll until `condition()` returns something truthy; return it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout_s}s")


def router_log_lines(stack, request_id: str, count: int) -> list[dict]:
    """The router's log lines of one request, once `count` of them are written (the request's own line is
    written just after its answer, so it may come a moment after the client has the answer)."""

    def written() -> list[dict] | None:
        text = (stack.run_dir / "router.log").read_text()
        lines = [json.loads(line) for line in text.splitlines() if request_id in line]
        return lines if len(lines) >= count else None

    return wait_for(written, f"{count} router log lines of request {request_id}", timeout_s=10)


def wait_until_token_expired(openbao, token: str, what: str, timeout_s: float = 15) -> None:
    """Wait until OpenBao no longer knows the Vault `token` (a login whose TTL ran out)."""
    from hvac import exceptions as hvac_errors

    root = openbao.root_client()

    def expired() -> bool:
        try:
            root.auth.token.lookup(token)
        except hvac_errors.Forbidden:
            return True
        return False

    wait_for(expired, what, timeout_s)


def key_accepted(stack, key: str) -> bool:
    """Whether the gateway takes `key` (a model route; 401 means no)."""
    try:
        openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0, timeout=30).models.list()
    except openai.AuthenticationError:
        return False
    return True
