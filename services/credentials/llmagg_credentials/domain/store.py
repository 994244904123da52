"""The one port of the credentials domain: a versioned document store (Vault KV v2 in production).

Every write is one document: an account with its key and metadata, or one client key. So a write
either happens whole or not at all, and check-and-set versions make create and update safe against
a concurrent writer (another replica, another admin).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

ACCOUNTS = "accounts"
CLIENT_KEYS = "client-keys"
# Change notes: one small document per kind whose version moves on every change of that kind, for
# replicas to poll cheaply (one read) instead of rereading every document.
CHANGES = "changes"


class StoreUnavailable(Exception):
    """The store cannot be reached (down, sealed, our token expired); nothing was written."""


class VersionConflict(Exception):
    """A create found the document already there, or an update found it changed since it was read."""


@dataclass(frozen=True)
class Document:
    data: Mapping[str, Any]
    version: int


class Store(Protocol):
    async def read(self, kind: str, name: str) -> Document | None: ...

    async def names(self, kind: str) -> list[str]: ...

    async def write(self, kind: str, name: str, data: Mapping[str, Any], *, version: int) -> int:
        """Write when the stored version is `version` (0: only if absent); VersionConflict otherwise.
        Returns the new version."""
        ...

    async def delete(self, kind: str, name: str) -> bool:
        """Remove the document and every version of it; False when there was none."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store can serve reads and writes now."""
        ...

    def describe(self) -> str:
        """Where the store is, for messages (never a credential)."""
        ...
