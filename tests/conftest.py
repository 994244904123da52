"""Cross-service fixtures: a real provider simulator, router process and Envoy, on free ports.

Every scenario gets its own simulated providers (one URL prefix each), so the router's learned
state (cooldowns, disabled keys, circuits) from one test never steers another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmagg.devstack.stack import Ports, Stack, write_config
from provider_simulator.testing import SimulatorProcess

SIM_KEY_ENV = "SIM_PROVIDER_KEY"
SIM_KEY = "sk-sim-e2e-FAKE-key"

# provider id -> (default behaviour, alias it serves, speed). Higher speed is tried first.
SCENARIOS: dict[str, tuple[dict | None, str, int]] = {
    "sim-fast": (None, "chat-model", 5),
    "rl-first": ({"type": "429", "retry_after": 1}, "fallback-429", 5),
    "rl-backup": (None, "fallback-429", 1),
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
}

ROUTER_TEST_ENV = {
    SIM_KEY_ENV: SIM_KEY,
    "ROUTER_READ_TIMEOUT_S": "1.5",  # the `hang` scenario falls over after this
    "ROUTER_LOG_LEVEL": "INFO",
}


def routing_config(simulator: SimulatorProcess) -> dict:
    providers = []
    for name, (_, alias, speed) in SCENARIOS.items():
        models = [{"id": "sim-small", "quality": 3, "context_window": 32768, "aliases": [alias]}]
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
        "accounts": [{"provider": p["id"], "alias": f"{p['id']}-acct", "api_key_env": SIM_KEY_ENV} for p in providers],
        "fallback_chains": {
            "e2e-chain": [
                {"provider": "rl-first", "model": "sim-small"},
                {"provider": "sim-fast", "model": "sim-small"},
            ]
        },
    }


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess() as sim:
        for name, (behaviour, _, _) in SCENARIOS.items():
            if behaviour:
                sim.set_behaviour(name, behaviour)
        yield sim


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def router_config(simulator, run_dir) -> Path:
    return write_config(run_dir / "config.yaml", routing_config(simulator))


@pytest.fixture(scope="session")
def stack(router_config, run_dir) -> Iterator[Stack]:
    """Router + Envoy, started once for the session."""
    stack = Stack(run_dir, Ports.free())
    try:
        stack.start_router({**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config)})
        stack.start_gateway()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def empty_stack(tmp_path_factory) -> Iterator[Stack]:
    """Router + Envoy with no provider account configured: what a new user sees first."""
    stack = Stack(tmp_path_factory.mktemp("empty-stack"), Ports.free())
    try:
        stack.start_router({"LLMAGG_CONFIG": ""})
        stack.start_gateway()
        yield stack
    finally:
        stack.stop()
