"""The Vault store adapter against the real OpenBao: check-and-set writes, and the logins production uses."""

from __future__ import annotations

import secrets

import pytest

from llmagg_credentials.adapters.vault_store import VaultLogin, VaultStore
from llmagg_credentials.domain.store import ACCOUNTS, StoreUnavailable, VersionConflict
from llmagg_devstack import CREDENTIALS_POLICY

from ..helpers import wait_until_token_expired


@pytest.fixture(scope="module")
def mount(openbao) -> str:
    """A KV v2 mount of this module's own, with the credentials policy over it."""
    name = f"t-store-{secrets.token_hex(3)}"
    root = openbao.root_client()
    root.sys.enable_secrets_engine("kv", path=name, options={"version": "2"})
    root.sys.create_or_update_policy(f"{name}-credentials", CREDENTIALS_POLICY.format(mount=name))
    return name


@pytest.fixture(scope="module")
def approle(openbao, mount) -> tuple[str, str]:
    """An AppRole whose tokens carry the credentials policy and live 2 s (so the store must log in again)."""
    root = openbao.root_client()
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    role = f"{mount}-role"
    root.auth.approle.create_or_update_approle(
        role, token_policies=[f"{mount}-credentials"], token_ttl="2s", token_max_ttl="2s"
    )
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    return role_id, secret_id


async def test_creates_are_check_and_set_and_updates_need_the_version_read(openbao, mount):
    token = openbao.root_client().auth.token.create(policies=[f"{mount}-credentials"], ttl="1h")["auth"]["client_token"]
    store = VaultStore(openbao.address, VaultLogin("token", token=token), mount=mount)
    assert await store.write(ACCOUNTS, "a1", {"x": 1}, version=0) == 1
    with pytest.raises(VersionConflict):
        await store.write(ACCOUNTS, "a1", {"x": 2}, version=0)  # exists
    assert await store.write(ACCOUNTS, "a1", {"x": 2}, version=1) == 2
    with pytest.raises(VersionConflict):
        await store.write(ACCOUNTS, "a1", {"x": 3}, version=1)  # changed since version 1
    document = await store.read(ACCOUNTS, "a1")
    assert (document.data, document.version) == ({"x": 2}, 2)
    assert await store.names(ACCOUNTS) == ["a1"]
    assert await store.delete(ACCOUNTS, "a1") is True and await store.read(ACCOUNTS, "a1") is None
    assert await store.delete(ACCOUNTS, "a1") is False
    await store.ping()


async def test_approle_login_and_a_fresh_login_when_the_token_expires(openbao, mount, approle):
    role_id, secret_id = approle
    store = VaultStore(openbao.address, VaultLogin("approle", role_id=role_id, secret_id=secret_id), mount=mount)
    assert await store.write(ACCOUNTS, "by-approle", {"x": 1}, version=0) == 1
    first_token = store._client.token
    wait_until_token_expired(openbao, first_token, "the AppRole token to expire")  # the role's tokens live 2 s
    assert (await store.read(ACCOUNTS, "by-approle")).data == {"x": 1}
    assert store._client.token != first_token  # it logged in again rather than failing


async def test_a_token_without_the_policy_or_a_server_that_is_gone_is_unavailable(openbao, mount):
    store = VaultStore(openbao.address, VaultLogin("token", token="hvs.not-a-real-token"), mount=mount)
    with pytest.raises(StoreUnavailable, match="refused"):
        await store.read(ACCOUNTS, "x")
    gone = VaultStore("http://127.0.0.1:9", VaultLogin("token", token="t"), mount=mount, timeout_s=1)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        await gone.names(ACCOUNTS)
