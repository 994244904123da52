"""The one place where settings choose the credentials store."""

from __future__ import annotations

from llmagg_credentials.adapters.memory_store import MemoryStore
from llmagg_credentials.adapters.vault_store import VaultLogin, VaultStore
from llmagg_credentials.domain.store import Store
from llmagg_credentials.settings import CredentialsSettings


def _value(secret) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def create_store(settings: CredentialsSettings) -> Store:
    match settings.store:
        case "memory":
            return MemoryStore()
        case "vault":
            login = VaultLogin(
                settings.vault_auth,
                token=_value(settings.vault_token),
                token_file=settings.vault_token_file,
                role_id=settings.vault_role_id,
                secret_id=_value(settings.vault_secret_id),
                secret_id_file=settings.vault_secret_id_file,
                kubernetes_role=settings.vault_kubernetes_role,
                jwt_file=settings.vault_jwt_file,
                mount=settings.vault_auth_mount,
            )
            return VaultStore(
                settings.vault_addr, login, mount=settings.vault_mount, timeout_s=settings.vault_timeout_s
            )
    raise ValueError(f"unknown credentials store {settings.store!r}")
