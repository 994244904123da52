"""The Store on Vault/OpenBao KV v2 through hvac: one secret per account or client key.

hvac is synchronous; every call runs in a worker thread so the gRPC loop never blocks on Vault.
Authentication is a token (a value or a file, re-read when Vault refuses it), AppRole or Kubernetes,
chosen by settings; a refused token triggers one fresh login before the call is retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import hvac
import requests
from hvac import exceptions as hvac_errors

from llmagg_credentials.domain.store import Document, StoreUnavailable, VersionConflict

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_JWT_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class VaultLogin:
    """How the service gets its Vault token."""

    def __init__(
        self,
        method: str,
        *,
        token: str | None = None,
        token_file: Path | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        secret_id_file: Path | None = None,
        kubernetes_role: str | None = None,
        jwt_file: Path | None = None,
        mount: str | None = None,
    ) -> None:
        self.method = method
        self._token, self._token_file = token, token_file
        self._role_id, self._secret_id, self._secret_id_file = role_id, secret_id, secret_id_file
        self._kubernetes_role, self._jwt_file = kubernetes_role, jwt_file
        self._mount = mount

    @property
    def can_log_in_again(self) -> bool:
        """Whether a refused token can be replaced (a token given as a value cannot)."""
        return self.method != "token" or self._token_file is not None

    @property
    def auth_mount(self) -> str:
        return self._mount or self.method

    def refusal(self) -> str:
        """What a refused login means, without any secret: for the operator reading the readiness message."""
        if self.method == "kubernetes":
            return (
                f"refused the kubernetes login (role {self._kubernetes_role!r} at auth/{self.auth_mount}):"
                " check the role's bound ServiceAccount names and namespaces"
            )
        if self.method == "approle":
            return f"refused the approle login (at auth/{self.auth_mount}): check the role id and secret id"
        return "refused this service's token"

    def login(self, client: hvac.Client) -> None:
        if self.method == "token":
            token = self._token_file.read_text().strip() if self._token_file else self._token
            if not token:
                raise StoreUnavailable("no Vault token: set CREDENTIALS_VAULT_TOKEN or CREDENTIALS_VAULT_TOKEN_FILE")
            client.token = token
        elif self.method == "approle":
            secret_id = self._secret_id_file.read_text().strip() if self._secret_id_file else self._secret_id
            client.auth.approle.login(self._role_id, secret_id, mount_point=self.auth_mount)
        elif self.method == "kubernetes":
            if not self._kubernetes_role:
                raise StoreUnavailable("the Vault kubernetes login needs CREDENTIALS_VAULT_KUBERNETES_ROLE")
            jwt_file = self._jwt_file or DEFAULT_JWT_FILE
            try:  # re-read at every login: kubelet rotates the projected token in place
                jwt = jwt_file.read_text().strip()
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot read the ServiceAccount token file {jwt_file} for the Vault kubernetes login"
                    f" ({type(exc).__name__})"
                ) from None
            client.auth.kubernetes.login(self._kubernetes_role, jwt, mount_point=self.auth_mount)
        else:
            raise ValueError(f"unknown Vault auth method {self.method!r}")


class VaultStore:
    def __init__(self, address: str, login: VaultLogin, *, mount: str = "llmagg", timeout_s: float = 5.0) -> None:
        self._address = address
        self._mount = mount
        self._login = login
        self._client = hvac.Client(url=address, timeout=timeout_s)
        self._logged_in = False
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return f"Vault at {self._address} (mount {self._mount})"

    def _call(self, operation: Callable[[], T]) -> T:
        """Run one hvac operation with a login first (and once more when Vault refuses the token)."""
        for attempt in (1, 2):
            try:
                if not self._logged_in:
                    self._log_in()
                return operation()
            except hvac_errors.Forbidden:
                if attempt == 2 or not self._login.can_log_in_again:
                    raise StoreUnavailable(f"{self.describe()} refused this service's token") from None
                self._logged_in = False  # expired or revoked: log in again, then retry once
            except (requests.RequestException, OSError) as exc:
                raise StoreUnavailable(f"{self.describe()} is unreachable ({type(exc).__name__})") from None
            except (hvac_errors.VaultDown, hvac_errors.InternalServerError, hvac_errors.BadGateway) as exc:
                raise StoreUnavailable(f"{self.describe()} cannot serve: {type(exc).__name__}") from None
        raise AssertionError("unreachable")

    def _log_in(self) -> None:
        """Log in; a refused login is not retried within this call (the same credentials would be refused again)."""
        try:
            self._login.login(self._client)
        except (hvac_errors.Forbidden, hvac_errors.InvalidRequest, hvac_errors.Unauthorized):
            raise StoreUnavailable(f"{self.describe()} {self._login.refusal()}") from None
        self._logged_in = True

    async def _run(self, operation: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._call, operation)

    def _path(self, kind: str, name: str) -> str:
        return f"{kind}/{name}"

    async def read(self, kind: str, name: str) -> Document | None:
        kv = self._client.secrets.kv.v2

        def read() -> Document | None:
            try:
                response = kv.read_secret_version(
                    self._path(kind, name), mount_point=self._mount, raise_on_deleted_version=True
                )
            except hvac_errors.InvalidPath:
                return None
            return Document(response["data"]["data"], int(response["data"]["metadata"]["version"]))

        return await self._run(read)

    async def names(self, kind: str) -> list[str]:
        kv = self._client.secrets.kv.v2

        def names() -> list[str]:
            try:
                response = kv.list_secrets(kind, mount_point=self._mount)
            except hvac_errors.InvalidPath:
                return []
            return sorted(key for key in response["data"]["keys"] if not key.endswith("/"))

        return await self._run(names)

    async def write(self, kind: str, name: str, data: Mapping[str, Any], *, version: int) -> int:
        kv = self._client.secrets.kv.v2

        def write() -> int:
            try:
                response = kv.create_or_update_secret(
                    self._path(kind, name), secret=dict(data), cas=version, mount_point=self._mount
                )
            except hvac_errors.InvalidRequest as exc:
                if "check-and-set" in str(exc):
                    raise VersionConflict(f"{kind}/{name} changed or exists") from None
                raise
            return int(response["data"]["version"])

        return await self._run(write)

    async def delete(self, kind: str, name: str) -> bool:
        kv = self._client.secrets.kv.v2

        def delete() -> bool:
            try:
                kv.read_secret_metadata(self._path(kind, name), mount_point=self._mount)
            except hvac_errors.InvalidPath:
                return False
            kv.delete_metadata_and_all_versions(self._path(kind, name), mount_point=self._mount)
            return True

        return await self._run(delete)

    async def ping(self) -> None:
        def ping() -> None:
            status = self._client.sys.read_health_status(method="GET")
            if not isinstance(status, dict) or status.get("sealed") or status.get("standby"):
                raise StoreUnavailable(f"{self.describe()} is sealed, on standby or not initialised")
            self._client.auth.token.lookup_self()  # our token still works

        await self._run(ping)
