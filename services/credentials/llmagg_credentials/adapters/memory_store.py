"""A Store in this process's memory: unit tests, and a throwaway stack (CREDENTIALS_STORE=memory)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from llmagg_credentials.domain.store import Document, StoreUnavailable, VersionConflict


class MemoryStore:
    def __init__(self) -> None:
        self._documents: dict[tuple[str, str], Document] = {}
        self.available = True  # tests switch it off to play a store that is down

    def _check(self) -> None:
        if not self.available:
            raise StoreUnavailable("the memory store is switched off")

    async def read(self, kind: str, name: str) -> Document | None:
        self._check()
        document = self._documents.get((kind, name))
        return copy.deepcopy(document)

    async def names(self, kind: str) -> list[str]:
        self._check()
        return sorted(name for k, name in self._documents if k == kind)

    async def write(self, kind: str, name: str, data: Mapping[str, Any], *, version: int) -> int:
        self._check()
        current = self._documents.get((kind, name))
        if (current.version if current else 0) != version:
            raise VersionConflict(f"{kind}/{name} is at another version")
        self._documents[(kind, name)] = Document(copy.deepcopy(dict(data)), version + 1)
        return version + 1

    async def delete(self, kind: str, name: str) -> bool:
        self._check()
        return self._documents.pop((kind, name), None) is not None

    async def ping(self) -> None:
        self._check()

    def describe(self) -> str:
        return "the in-memory store"
