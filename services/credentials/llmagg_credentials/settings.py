"""Credentials settings: CREDENTIALS_* environment variables, read once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr

from llmagg.common.settings import ServiceSettings, settings_config
from llmagg.registry import SHIPPED_REGISTRY
from llmagg.suite import service


class CredentialsSettings(ServiceSettings):
    model_config = settings_config("credentials")

    port: int = service("credentials").port
    metrics_port: int = service("credentials").metrics_port
    # The user's YAML: its providers are known here too, its accounts are imported at start.
    config: Path | None = Field(default=None, validation_alias=AliasChoices("CREDENTIALS_CONFIG", "LLMAGG_CONFIG"))
    registry: Path = SHIPPED_REGISTRY
    # Where accounts and keys live (backends.py picks it): Vault/OpenBao KV v2, or memory (tests).
    store: Literal["vault", "memory"] = "vault"
    vault_addr: str = Field(
        default="http://127.0.0.1:8200", validation_alias=AliasChoices("CREDENTIALS_VAULT_ADDR", "VAULT_ADDR")
    )
    vault_mount: str = "llmagg"  # a KV v2 mount this service owns
    vault_timeout_s: float = Field(default=5.0, gt=0)
    # How this service logs in to Vault: token (value or file), AppRole or Kubernetes.
    vault_auth: Literal["token", "approle", "kubernetes"] = "token"
    vault_token: SecretStr | None = None
    vault_token_file: Path | None = None
    vault_role_id: str | None = None
    vault_secret_id: SecretStr | None = None
    vault_secret_id_file: Path | None = None
    vault_kubernetes_role: str | None = None
    vault_jwt_file: Path | None = None
    vault_auth_mount: str | None = None
    # How long the router may use a leased key before it must lease again: a rotated or disabled
    # key is used by no router after this.
    lease_ttl_s: float = Field(default=60.0, gt=0)
    # How long a verdict on a client key is cached: a revoked key is refused within this.
    authz_cache_ttl_s: float = Field(default=10.0, ge=0)
    # How often the store's change note is read for the client keys every gateway checks (xDS): a key
    # created or revoked on any replica reaches every gateway within about this.
    key_table_poll_s: float = Field(default=0.25, gt=0)
    # How long an account listing read from the store is served before it is read again.
    store_cache_s: float = Field(default=2.0, ge=0)
    # An admin key from the environment (scripts, CI); otherwise the first start writes one to
    # `admin_key_file`.
    admin_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("CREDENTIALS_ADMIN_KEY", "LLMAGG_ADMIN_KEY")
    )
    admin_key_file: Path | None = None
