"""Fixtures for the credentials unit tests: the domain on the in-memory store."""

from __future__ import annotations

import pytest

from llmagg.common.secrets import Secret
from llmagg_credentials.adapters.memory_store import MemoryStore
from llmagg_credentials.domain.access import Access, Caller
from llmagg_credentials.domain.accounts import AccountBook
from llmagg_credentials.domain.client_keys import ClientKeys

from .helpers import PROVIDERS, Clocks

RATELIMIT_TOKEN = "ratelimit-service-token-for-tests"
ROUTER_TOKEN = "router-token-for-tests"
DISCOVERY_TOKEN = "discovery-token-for-tests"
ENV_ADMIN = "sk-test-FAKE-env-admin"


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def book(store, clocks) -> AccountBook:
    return AccountBook(store, PROVIDERS, cache_s=2.0, clock=clocks.wall, monotonic=clocks.monotonic)


@pytest.fixture
def keys(store, clocks) -> ClientKeys:
    return ClientKeys(
        store, cache_ttl_s=10.0, env_admin_key=Secret(ENV_ADMIN), clock=clocks.wall, monotonic=clocks.monotonic
    )


@pytest.fixture
def access(keys) -> Access:
    tokens = {Caller.ROUTER: ROUTER_TOKEN, Caller.RATELIMIT: RATELIMIT_TOKEN, Caller.DISCOVERY: DISCOVERY_TOKEN}
    return Access(keys, {caller: Secret(token) for caller, token in tokens.items()})
