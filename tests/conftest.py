"""Cross-service fixtures: a real provider simulator, a real OpenBao, the services and Envoy, on free ports.

Every scenario gets its own simulated providers (one URL prefix each), so the router's learned
state (cooldowns, disabled keys, circuits) from one test never steers another. One OpenBao serves
the whole session; each stack keeps its accounts and keys in a KV mount of its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llmagg_devstack import OpenBao, Ports, SimulatorProcess, Stack, free_port, start_openbao, write_config

from .helpers import (
    AGENT_TEST_ENV,
    DISCOVERY_TEST_ENV,
    ROUTER_TEST_ENV,
    create_client_key,
    routing_config,
    startup_behaviours,
)


def pytest_configure(config) -> None:
    """Every stack a test starts reaches nothing beyond loopback: discovery reads the community list from
    the snapshot in its package and, unless a test turns them on, asks no provider anything."""
    for name, value in DISCOVERY_TEST_ENV.items():
        os.environ.setdefault(name, value)


@pytest.fixture(scope="session")
def simulator(tmp_path_factory) -> Iterator[SimulatorProcess]:
    with SimulatorProcess(startup_behaviours(), log_path=tmp_path_factory.mktemp("simulator") / "sim.log") as sim:
        yield sim


@pytest.fixture(scope="session")
def openbao(tmp_path_factory) -> Iterator[OpenBao]:
    """One real OpenBao server for the session, initialised and unsealed by the dev stack's own code."""
    bao = start_openbao(tmp_path_factory.mktemp("openbao"), free_port())
    try:
        yield bao
    finally:
        bao.process.stop()


@pytest.fixture(scope="session")
def make_stack(openbao) -> Callable[..., Stack]:
    """A Stack on free ports that uses the session's OpenBao under a namespace of its own."""

    def make(run_dir: Path, **options) -> Stack:
        return Stack(
            run_dir, Ports.free(), namespace=f"t-{secrets.token_hex(4)}", dependencies={"openbao": openbao}, **options
        )

    return make


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
def stack(router_config, run_dir, make_stack, workspaces) -> Iterator[Stack]:
    """Every service and Envoy, started once for the session."""
    env = {**ROUTER_TEST_ENV, **AGENT_TEST_ENV, "AGENT_WORKSPACE_ROOTS": str(workspaces)}
    with make_stack(run_dir).running({**env, "LLMAGG_CONFIG": str(router_config)}) as stack:
        yield stack


@pytest.fixture(scope="session")
def client_key(stack) -> str:
    """A plain (non-admin) client key of the session's stack, made through the admin API."""
    return create_client_key(stack, "e2e client")


@pytest.fixture(scope="session")
def empty_stack(tmp_path_factory, make_stack) -> Iterator[Stack]:
    """The stack with no provider account configured: what a new user sees first."""
    env = {"LLMAGG_CONFIG": "", "LLMAGG_ADMIN_KEY": ROUTER_TEST_ENV["LLMAGG_ADMIN_KEY"]}
    with make_stack(tmp_path_factory.mktemp("empty-stack")).running(env) as stack:
        yield stack
