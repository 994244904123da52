"""Accounts that change while the router runs (the credentials service), and a client's own key (BYOK)."""

from __future__ import annotations

import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.secrets import Secret
from llmagg.registry import Account
from llmagg_router.adapters.memory_health import MemoryHealthStore
from llmagg_router.adapters.unmetered_quota import UnmeteredQuota
from llmagg_router.domain.limits import RouterLimits
from llmagg_router.domain.ports import KeyOutcome, KeyUnavailable, RouterPorts
from llmagg_router.domain.resolver import Resolver
from llmagg_router.domain.router import Router

from .helpers import make_config

HELLO = {"model": "llama-70b", "messages": [{"role": "user", "content": "hi"}]}
OWN_KEY = "sk-test-FAKE-own-key"


class ChangingKeys:
    """A KeySource whose accounts change under the router, like the credentials service's."""

    def __init__(self, accounts: dict[str, tuple[Account, ...]]) -> None:
        self.by_provider = accounts
        self.generation = 1
        self.counted = 0
        self.unleasable: set[str] = set()
        self.reports: list[tuple[str, KeyOutcome]] = []

    def change(self, accounts: dict[str, tuple[Account, ...]]) -> None:
        self.by_provider = accounts
        self.generation += 1

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def accounts(self, provider: str) -> tuple[Account, ...]:
        self.counted += 1
        return self.by_provider.get(provider, ())

    def usable(self, account: Account) -> bool:
        return True

    async def lease(self, account: Account) -> Secret | None:
        if account.alias in self.unleasable:
            raise KeyUnavailable("disabled by an admin")
        return Secret(f"sk-test-FAKE-{account.alias}")

    async def report(self, account: Account, outcome: KeyOutcome) -> None:
        self.reports.append((account.alias, outcome))


def account(provider: str, alias: str) -> Account:
    return Account(provider, alias, f"https://{provider}.example/v1")


@pytest.fixture
def keys() -> ChangingKeys:
    return ChangingKeys({"smart": (account("smart", "smart-1"),)})


@pytest.fixture
def router(keys, upstream, clock, metrics) -> Router:
    config = make_config(accounts=[])
    health = MemoryHealthStore(failure_threshold=2, open_for_s=30, clock=clock)
    ports = RouterPorts(keys=keys, quota=UnmeteredQuota(), health=health, metrics=metrics)
    return Router(Resolver(config, keys, health, {"openai"}), ports, {"openai": upstream}, RouterLimits())


async def test_an_account_added_while_running_is_routed_to_on_the_next_request(router, keys, upstream):
    await router.complete(HELLO)
    assert upstream.attempted() == [("smart", "smart-1")]
    assert "fast" not in router.resolver.routable_providers
    keys.change({"smart": (account("smart", "smart-1"),), "fast": (account("fast", "fast-9"),)})
    await router.complete(HELLO)
    assert upstream.attempted()[-1] == ("fast", "fast-9")  # faster provider, now routable
    assert "fast" in router.resolver.routable_providers


async def test_a_removed_account_is_never_tried_again(router, keys, upstream):
    keys.change({})
    with pytest.raises(ServiceError) as caught:
        await router.complete(HELLO)
    assert caught.value.code == "no_accounts_configured"
    assert upstream.attempted() == []


async def test_an_unchanged_generation_costs_no_rederivation(router, keys):
    router.resolver.resolve("llama-70b", None, None)
    before = keys.counted
    router.resolver.resolve("llama-70b", None, None)
    assert keys.counted - before == 1  # the one lookup of the target's accounts, nothing re-derived


async def test_an_account_without_a_lease_is_skipped_without_a_call(router, keys, upstream):
    keys.change({"smart": (account("smart", "smart-1"), account("smart", "smart-2"))})
    keys.unleasable = {"smart-1", "smart-2"}
    with pytest.raises(ServiceError) as caught:
        await router.complete(HELLO)
    assert (caught.value.kind, caught.value.code) == (ErrorKind.UNAVAILABLE, "no_usable_account")
    assert "smart-1: disabled by an admin" in caught.value.message
    assert upstream.attempted() == []
    keys.unleasable = {"smart-1"}
    await router.complete(HELLO)
    assert upstream.attempted() == [("smart", "smart-2")]


async def test_an_own_key_is_used_for_the_pinned_provider_only_and_never_reported(router, keys, upstream):
    body = {**HELLO, "provider": "fast"}  # no account of `fast` is configured: the own key makes it routable
    result = await router.complete(body, own_key=Secret(OWN_KEY))
    assert result.route.provider == "fast" and result.route.account.startswith("byok-")
    assert OWN_KEY not in result.route.account
    assert upstream.keys == [OWN_KEY]
    assert keys.reports == []


async def test_an_own_key_needs_a_provider_pin(router, upstream):
    with pytest.raises(ServiceError) as caught:
        await router.complete(HELLO, own_key=Secret(OWN_KEY))
    assert (caught.value.kind, caught.value.code) == (ErrorKind.INVALID_ARGUMENT, "own_key_needs_provider")
    with pytest.raises(ServiceError) as caught:
        await router.complete({**HELLO, "provider": "claude"}, own_key=Secret(OWN_KEY))  # no adapter speaks it
    assert caught.value.code == "own_key_needs_provider"
    assert upstream.attempted() == []


async def test_an_own_key_streams_too(router, upstream):
    stream = await router.open_stream({**HELLO, "provider": "fast", "stream": True}, Secret(OWN_KEY))
    chunks = [chunk async for chunk in stream]
    assert chunks and upstream.keys == [OWN_KEY]
