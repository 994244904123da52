"""What the discovery unit tests share: the shipped snapshot, a registry of a few providers, fakes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from llmagg.common.secrets import Secret
from llmagg.registry import merge_providers
from llmagg_discovery.domain.ports import ProviderAccount, SourceContext
from llmagg_discovery.domain.records import SourceReport

SNAPSHOT = Path(__file__).resolve().parents[1] / "llmagg_discovery" / "data" / "free-llm-api-resources" / "README.md"

REGISTRY = merge_providers(
    [
        {
            "id": "acme",
            "name": "Acme",
            "base_url": "https://api.acme.example/v1",
            "tier": "free",
            "models": [
                {"id": "acme-large", "name": "Acme Large", "context_window": 8192, "quality": 3, "aliases": ["acme-l"]},
                {"id": "acme-small", "name": "Acme Small", "context_window": 4096, "quality": 1},
            ],
        },
        {
            "id": "gone",
            "name": "Gone Inc",
            "base_url": "https://api.gone.example/v1",
            "retired_on": "2026-07-30",
            "retired_reason": "answers 410",
            "models": [{"id": "gone-1"}],
        },
    ]
)


class FakeAccounts:
    def __init__(self, *accounts: ProviderAccount) -> None:
        self.listed = accounts

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def accounts(self) -> tuple[ProviderAccount, ...]:
        return self.listed

    async def key(self, account: ProviderAccount) -> Secret | None:
        return Secret("sk-test-FAKE-discovery-key")


class ScriptedSource:
    """A source that answers what the test gives it: a report, an exception, or a hang."""

    def __init__(self, name: str, interval_s: float = 3600.0, timeout_s: float = 1.0) -> None:
        self.name = name
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.next: SourceReport | BaseException | None = None
        self.hang = False
        self.runs = 0

    async def run(self, context: SourceContext) -> SourceReport:
        self.runs += 1
        if self.hang:
            await asyncio.Event().wait()
        if isinstance(self.next, BaseException):
            raise self.next
        return self.next or SourceReport(self.name)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
