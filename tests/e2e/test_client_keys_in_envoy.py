"""Client keys reach Envoy by xDS from the credentials service: a key created or revoked anywhere takes
effect at the gateway within a second, and Envoy's config holds hashes only, never a key."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import urllib.request
from collections.abc import Iterator

import pytest

from llmagg import gateway_keys
from llmagg.suite import service
from llmagg_credentials.backends import create_store
from llmagg_credentials.domain.client_keys import ClientKeys
from llmagg_credentials.domain.store import CLIENT_KEYS
from llmagg_credentials.settings import CredentialsSettings
from llmagg_devstack import Stack, free_port

from ..helpers import ADMIN_KEY, ROUTER_TEST_ENV, admin_call, create_client_key, key_accepted, post_raw

PROPAGATION_S = 1.0


def _seconds_until(condition, timeout_s: float = 15) -> float:
    """How long until `condition()` holds (polled; fails after `timeout_s`)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s}s")
        time.sleep(0.02)
    return time.monotonic() - start


def _another_replica(stack, monkeypatch) -> ClientKeys:
    """The keys as a second credentials replica sees them: the same store (the running replica's
    caches know nothing of what it does)."""
    for name, value in stack.environment(service("credentials")).items():
        monkeypatch.setenv(name, value)
    return ClientKeys(create_store(CredentialsSettings()))


def _revoke_on_another_replica(stack, monkeypatch, key_id: str) -> None:
    assert asyncio.run(_another_replica(stack, monkeypatch).revoke(key_id)).revoked


@pytest.mark.parametrize("where", ["admin API", "another replica"])
def test_a_revoked_key_is_refused_at_the_gateway_within_a_second(stack, monkeypatch, where):
    key = create_client_key(stack, f"revoked through the {where}")
    assert _seconds_until(lambda: key_accepted(stack, key)) < PROPAGATION_S
    for _ in range(3):  # whatever the gateway caches about the key, it is cached now
        assert key_accepted(stack, key)
    key_id = key.split("-")[2]
    if where == "admin API":
        status, body = admin_call(stack, "DELETE", f"/v1/admin/keys/{key_id}")
        assert status == 200 and body["key"]["revoked"] is True
    else:
        _revoke_on_another_replica(stack, monkeypatch, key_id)
    assert _seconds_until(lambda: not key_accepted(stack, key)) < PROPAGATION_S
    assert not key_accepted(stack, key)


@pytest.fixture
def second_gateway(stack, tmp_path) -> Iterator[Stack]:
    """Another Envoy in front of the same services (as a second gateway pod would be)."""
    other = dataclasses.replace(
        stack,
        run_dir=tmp_path,
        ports=dataclasses.replace(stack.ports, gateway=free_port(), admin=free_port()),
        processes=[],
        readiness={},
    )
    try:
        other.start_gateway()
        yield other
    finally:
        for process in other.processes:
            process.stop()


def test_a_key_revoked_on_another_replica_is_refused_by_every_gateway_within_a_second(
    stack, second_gateway, monkeypatch
):
    gateways = (stack, second_gateway)
    key = create_client_key(stack, "revoked behind two gateways")
    assert _seconds_until(lambda: all(key_accepted(g, key) for g in gateways)) < PROPAGATION_S
    _revoke_on_another_replica(stack, monkeypatch, key.split("-")[2])
    revoked_at = time.monotonic()
    for gateway in gateways:
        _seconds_until(lambda g=gateway: not key_accepted(g, key))
        assert time.monotonic() - revoked_at < PROPAGATION_S
    assert not any(key_accepted(g, key) for g in gateways)


@pytest.fixture
def slow_table_stack(tmp_path, make_stack, router_config) -> Iterator[Stack]:
    """A stack whose credentials replica reads the key store's changes only every 30 s, so a key made on
    another replica stays out of the gateway's table for the whole test."""
    env = {**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config), "CREDENTIALS_KEY_TABLE_POLL_S": "30"}
    with make_stack(tmp_path).running(env) as stack:
        yield stack


def test_a_key_created_on_another_replica_works_at_once_before_the_gateways_table_has_it(slow_table_stack, monkeypatch):
    """The admin call that made it returned: its client may use it now, whichever credentials replica
    feeds the gateway (Envoy sends an id its table does not know yet to ext_authz, which reads the store).
    A revoked key's id is in the table: Envoy refuses it itself."""
    stack = slow_table_stack
    known = create_client_key(stack, "made here")
    assert _seconds_until(lambda: key_accepted(stack, known)) < PROPAGATION_S
    _, secret = asyncio.run(_another_replica(stack, monkeypatch).create("made elsewhere", "client"))
    assert key_accepted(stack, secret.reveal())
    assert not key_accepted(stack, known.replace(known.split("-")[3], "0" * 32))  # a known id, a wrong secret
    assert not key_accepted(stack, f"sk-llmagg-{'0' * 12}-{'1' * 32}")  # an id no store holds


def test_a_created_key_works_at_the_gateway_within_a_second(stack):
    key = create_client_key(stack, "new")
    assert _seconds_until(lambda: key_accepted(stack, key)) < PROPAGATION_S


def test_envoys_config_holds_no_key(stack):
    client_key = create_client_key(stack, "not in the dump")
    admin_key = create_client_key(stack, "admin, not in the dump", scope="admin")
    assert _seconds_until(lambda: key_accepted(stack, client_key) and key_accepted(stack, admin_key)) < PROPAGATION_S
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


def test_a_short_environment_admin_key_is_not_hashed_into_envoy_and_still_works_on_model_routes(stack):
    """LLMAGG_ADMIN_KEY is chosen by an operator (maybe weak): under 32 characters ext_authz checks it."""
    assert len(ADMIN_KEY) < 32
    assert key_accepted(stack, ADMIN_KEY)  # /v1/models: not an admin path
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports.admin}/config_dump", timeout=10) as response:
        dump = response.read().decode()
    assert re.search(r"LEGACY_IDS = \{[^}]*admin-env", dump)  # the Lua filter sends it to ext_authz
    assert gateway_keys.sha_hash(ADMIN_KEY) not in dump


def test_a_key_stored_before_the_gateway_checked_keys_works_and_moves_to_envoys_check(stack, monkeypatch):
    keys = _another_replica(stack, monkeypatch)
    store = create_store(CredentialsSettings())

    async def make_legacy_key() -> tuple[str, str]:
        record, secret = await keys.create("made before hashes", "client")
        document = await store.read(CLIENT_KEYS, record.id)
        data = {k: v for k, v in document.data.items() if k != "envoy_hash"}  # as stored before
        await store.write(CLIENT_KEYS, record.id, data, version=document.version)
        await keys.create("any change: every replica rereads the keys", "client")
        return record.id, secret.reveal()

    key_id, key = asyncio.run(make_legacy_key())

    async def stored_hash() -> str:
        return (await store.read(CLIENT_KEYS, key_id)).data.get("envoy_hash", "")

    # Accepted all along; once the gateways know it has no hash (the next poll), ext_authz checks it,
    # and its first verification records the hash...
    _seconds_until(lambda: key_accepted(stack, key) and asyncio.run(stored_hash()), timeout_s=5)
    assert asyncio.run(stored_hash()) == gateway_keys.sha_hash(key)
    # ...then by the gateway itself: a revocation elsewhere is refused within a second (ext_authz's
    # cache would keep it for 10 s).
    assert key_accepted(stack, key)
    _revoke_on_another_replica(stack, monkeypatch, key_id)
    assert _seconds_until(lambda: not key_accepted(stack, key)) < PROPAGATION_S


def test_envoys_own_apis_are_admin_paths_through_the_gateway(stack, client_key):
    path = "/envoy.service.extension.v3.ExtensionConfigDiscoveryService/StreamExtensionConfigs"
    status, _, body = post_raw(
        f"http://127.0.0.1:{stack.ports.gateway}{path}", b"{}", {"Authorization": f"Bearer {client_key}"}
    )
    assert status == 403 and body["error"]["code"] == "insufficient_scope", body
