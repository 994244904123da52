"""Client keys reach Envoy by xDS from the credentials service: a key created or revoked anywhere takes
effect at the gateway within a second, and Envoy's config holds hashes only, never a key."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import openai
import pytest

from llmagg import gateway_keys
from llmagg.suite import service
from llmagg_credentials.backends import create_store
from llmagg_credentials.domain.client_keys import ClientKeys
from llmagg_credentials.settings import CredentialsSettings

from ..helpers import admin_call, create_client_key

PROPAGATION_S = 1.0


def _accepted(stack, key: str) -> bool:
    try:
        openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0, timeout=30).models.list()
    except openai.AuthenticationError:
        return False
    return True


def _seconds_until(condition, timeout_s: float = 15) -> float:
    """How long until `condition()` holds (polled; fails after `timeout_s`)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s}s")
        time.sleep(0.02)
    return time.monotonic() - start


def _revoke_on_another_replica(stack, monkeypatch, key_id: str) -> None:
    """What a second credentials replica does on a revocation: write the store (the running replica's
    cache knows nothing of it)."""
    for name, value in stack.environment(service("credentials")).items():
        monkeypatch.setenv(name, value)
    keys = ClientKeys(create_store(CredentialsSettings()))
    assert asyncio.run(keys.revoke(key_id)).revoked


@pytest.mark.parametrize("where", ["admin API", "another replica"])
def test_a_revoked_key_is_refused_at_the_gateway_within_a_second(stack, monkeypatch, where):
    key = create_client_key(stack, f"revoked through the {where}")
    assert _seconds_until(lambda: _accepted(stack, key)) < PROPAGATION_S
    for _ in range(3):  # whatever the gateway caches about the key, it is cached now
        assert _accepted(stack, key)
    key_id = key.split("-")[2]
    if where == "admin API":
        status, body = admin_call(stack, "DELETE", f"/v1/admin/keys/{key_id}")
        assert status == 200 and body["key"]["revoked"] is True
    else:
        _revoke_on_another_replica(stack, monkeypatch, key_id)
    assert _seconds_until(lambda: not _accepted(stack, key)) < PROPAGATION_S
    assert not _accepted(stack, key)


def test_a_created_key_works_at_the_gateway_within_a_second(stack):
    key = create_client_key(stack, "new")
    assert _seconds_until(lambda: _accepted(stack, key)) < PROPAGATION_S


def test_envoys_config_holds_no_key(stack):
    client_key = create_client_key(stack, "not in the dump")
    admin_key = create_client_key(stack, "admin, not in the dump", scope="admin")
    assert _seconds_until(lambda: _accepted(stack, client_key) and _accepted(stack, admin_key)) < PROPAGATION_S
    url = f"http://127.0.0.1:{stack.ports.admin}/config_dump?include_eds"
    with urllib.request.urlopen(url, timeout=10) as response:
        dump = response.read().decode()
    for key in (client_key, admin_key):
        secret = key.split("-", 3)[3]
        assert key not in dump and secret not in dump
    # What it holds: both filters from the credentials service, the admin key's id among the admin ids,
    # and the hashes (which Envoy redacts in its dump besides).
    assert all(name in dump for name in gateway_keys.FILTER_NAMES)
    assert admin_key.split("-")[2] in dump
