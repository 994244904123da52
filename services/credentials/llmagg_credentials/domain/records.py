"""What the store holds: one document per provider account (key included) and per client key."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llmagg.common.secrets import Secret

Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def timestamp(clock: Clock) -> str:
    return clock().isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AccountRecord:
    provider: str
    alias: str
    key: Secret | None  # None: the provider needs no auth
    enabled: bool = True
    disabled_reason: str = ""
    disabled_at: str = ""
    disabled_by: str = ""  # "upstream" (a provider rejected the key) or "admin"
    labels: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    limits: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    key_version: int = 1
    source: str = "cli"
    created_at: str = ""
    updated_at: str = ""
    version: int = 0  # the store's version of the document (0: not stored yet)

    def document(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "alias": self.alias,
            "api_key": self.key.reveal() if self.key else "",
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "disabled_at": self.disabled_at,
            "disabled_by": self.disabled_by,
            "labels": dict(self.labels),
            "priority": self.priority,
            "limits": dict(self.limits),
            "params": dict(self.params),
            "key_version": self.key_version,
            "source": self.source,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any], version: int) -> AccountRecord:
        return cls(
            provider=str(data["provider"]),
            alias=str(data["alias"]),
            key=Secret(data["api_key"]) if data.get("api_key") else None,
            enabled=bool(data.get("enabled", True)),
            disabled_reason=str(data.get("disabled_reason", "")),
            disabled_at=str(data.get("disabled_at", "")),
            disabled_by=str(data.get("disabled_by", "")),
            labels=dict(data.get("labels") or {}),
            priority=int(data.get("priority", 0)),
            limits=dict(data.get("limits") or {}),
            params={k: str(v) for k, v in (data.get("params") or {}).items()},
            key_version=int(data.get("key_version", 1)),
            source=str(data.get("source", "cli")),
            created_at=str(data.get("created_at", "")),
            updated_at=str(data.get("updated_at", "")),
            version=version,
        )

    def enabled_again(self) -> AccountRecord:
        return replace(self, enabled=True, disabled_reason="", disabled_at="", disabled_by="")


@dataclass(frozen=True)
class ClientKeyRecord:
    id: str
    name: str
    scope: str  # "admin" or "client"
    salt: str  # hex
    digest: str  # hex HMAC-SHA256(salt, secret)
    created_at: str
    revoked_at: str = ""
    version: int = 0
    # `{SHA}` + base64 SHA-1 of the key: what Envoy checks it against (llmagg.gateway_keys). Empty for
    # a key stored before: recorded when the key is first verified by the service (ext_authz).
    envoy_hash: str = ""

    @property
    def revoked(self) -> bool:
        return bool(self.revoked_at)

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "salt": self.salt,
            "digest": self.digest,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "envoy_hash": self.envoy_hash,
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any], version: int) -> ClientKeyRecord:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            scope=str(data["scope"]),
            salt=str(data["salt"]),
            digest=str(data["digest"]),
            created_at=str(data.get("created_at", "")),
            revoked_at=str(data.get("revoked_at", "")),
            version=version,
            envoy_hash=str(data.get("envoy_hash", "")),
        )
