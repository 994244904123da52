"""What the discovery domain needs from the outside, as interfaces: sources, accounts, a store.

`backends.py` picks the implementations from settings; the domain never knows which it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from llmagg.common.secrets import Secret
from llmagg.registry import Provider
from llmagg_discovery.domain.records import Change, ModelRecord, ProviderRecord, SourceReport


@dataclass(frozen=True)
class ProviderAccount:
    provider: str
    alias: str
    base_url: str  # the provider's base URL with the account's placeholders filled


class AccountDirectory(Protocol):
    """Accounts (enabled ones) and their keys, to call providers' model lists and probe models with."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def accounts(self) -> tuple[ProviderAccount, ...]: ...

    async def key(self, account: ProviderAccount) -> Secret | None:
        """The key to call with (None: the provider needs none); raises when there is none to be had."""
        ...


@dataclass
class SourceContext:
    """What a source may read while it runs: the known providers, the catalogue as it stands, accounts."""

    providers: Mapping[str, Provider]
    catalogue: object  # the Catalogue (read only); typed loosely to keep sources free of it
    accounts: AccountDirectory
    now: float


class Source(Protocol):
    """A plugin that finds providers, models, limits or verdicts; each runs on its own schedule."""

    name: str
    interval_s: float  # 0: once, at start
    timeout_s: float

    async def run(self, context: SourceContext) -> SourceReport: ...


class SourceError(Exception):
    """A source's run failed (unreachable, garbage, refused): nothing of it is applied."""


@dataclass
class StoredCatalogue:
    revision: int = 0
    updated_at: float = 0.0
    models: list[ModelRecord] = field(default_factory=list)
    providers: list[ProviderRecord] = field(default_factory=list)


class CatalogueStore(Protocol):
    """Where the catalogue and its history live (SQLite by default, PostgreSQL at scale)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def load(self) -> StoredCatalogue: ...

    async def save(
        self,
        revision: int,
        updated_at: float,
        models: list[ModelRecord],
        providers: list[ProviderRecord],
        changes: list[Change],
    ) -> list[Change]:
        """Write it all in one transaction; the changes with the ids the store gave them."""
        ...

    async def changes(self, since: float, provider: str | None, limit: int) -> list[Change]:
        """Changes at or after `since`, newest first."""
        ...

    async def ping(self) -> bool: ...

    def describe(self) -> str: ...
