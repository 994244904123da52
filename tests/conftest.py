"""Cross-service fixtures: a real provider simulator, the services and Envoy, on free ports.

Every scenario gets its own simulated providers (one URL prefix each), so the router's learned
state (cooldowns, disabled keys, circuits) from one test never steers another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmagg_devstack.simulator import SimulatorProcess
from llmagg_devstack.stack import Ports, Stack, write_config

from .helpers import AGENT_TEST_ENV, ROUTER_TEST_ENV, routing_config, startup_behaviours


@pytest.fixture(scope="session")
def simulator(tmp_path_factory) -> Iterator[SimulatorProcess]:
    with SimulatorProcess(startup_behaviours(), log_path=tmp_path_factory.mktemp("simulator") / "sim.log") as sim:
        yield sim


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def router_config(simulator, run_dir) -> Path:
    return write_config(run_dir / "config.yaml", routing_config(simulator))


@pytest.fixture(scope="session")
def workspaces(tmp_path_factory) -> Path:
    """The agent's allowed workspace root: the project directories of agent tests are made under it."""
    return tmp_path_factory.mktemp("workspaces")


@pytest.fixture(scope="session")
def stack(router_config, run_dir, workspaces) -> Iterator[Stack]:
    """Every service and Envoy, started once for the session."""
    stack = Stack(run_dir, Ports.free())
    env = {**ROUTER_TEST_ENV, **AGENT_TEST_ENV, "AGENT_WORKSPACE_ROOTS": str(workspaces)}
    try:
        stack.start_services({**env, "LLMAGG_CONFIG": str(router_config)})
        stack.start_gateway()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def empty_stack(tmp_path_factory) -> Iterator[Stack]:
    """The stack with no provider account configured: what a new user sees first."""
    stack = Stack(tmp_path_factory.mktemp("empty-stack"), Ports.free())
    try:
        stack.start_services({"LLMAGG_CONFIG": ""})
        stack.start_gateway()
        yield stack
    finally:
        stack.stop()
