"""Fixtures for the credentials unit tests: the domain on the in-memory store."""

from __future__ import annotations

import pytest

from llmagg.common.secrets import Secret
from llmagg_credentials.adapters.memory_store import MemoryStore
from llmagg_credentials.domain.access import Access
from llmagg_credentials.domain.accounts import AccountBook
from llmagg_credentials.domain.client_keys import ClientKeys

from .helpers import PROVIDERS, Clocks

# Long enough (>= 32 characters) to be taken for a random secret: Envoy gets its hash (key_table.py).
ENV_ADMIN = "sk-test-FAKE-env-admin-0123456789abcdef"


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
    return Access(keys)
