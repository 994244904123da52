"""How the Vault store reports a login it cannot even attempt (no server needed: nothing is sent)."""

from __future__ import annotations

import pytest

from llmagg_credentials.adapters.vault_store import VaultLogin, VaultStore
from llmagg_credentials.domain.store import ACCOUNTS, StoreUnavailable

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a login that reached the network would say "unreachable"


async def test_a_missing_service_account_token_file_is_named_not_reported_as_vault_unreachable(tmp_path):
    missing = tmp_path / "serviceaccount" / "token"
    store = VaultStore(NOWHERE, VaultLogin("kubernetes", kubernetes_role="credentials", jwt_file=missing), timeout_s=1)
    with pytest.raises(StoreUnavailable) as failed:
        await store.read(ACCOUNTS, "a")
    assert str(failed.value) == (
        f"cannot read the ServiceAccount token file {missing} for the Vault kubernetes login (FileNotFoundError)"
    )


async def test_a_kubernetes_login_without_a_role_names_the_setting(tmp_path):
    token = tmp_path / "token"
    token.write_text("a.b.c")
    store = VaultStore(NOWHERE, VaultLogin("kubernetes", jwt_file=token), timeout_s=1)
    with pytest.raises(StoreUnavailable) as failed:
        await store.names(ACCOUNTS)
    assert str(failed.value) == "the Vault kubernetes login needs CREDENTIALS_VAULT_KUBERNETES_ROLE"
