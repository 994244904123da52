"""The KeySource of one machine: accounts from the config file, keys from the variables it names.

A rejected key disables its account in this process for `rejected_for_s` (an hour by default): long
enough not to hammer a provider with a dead key, short enough to pick up a fixed one without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from itertools import groupby

from llmagg.common.secrets import Secret
from llmagg.registry import Account, ConfiguredAccount
from llmagg_router.domain.ports import KeyOutcome


class ConfigKeySource:
    generation = 0  # the accounts never change while the process runs

    def __init__(
        self,
        configured: Iterable[ConfiguredAccount],
        *,
        rejected_for_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        configured = tuple(configured)
        self._keys = {(c.account.provider, c.account.alias): c.key for c in configured}
        ordered = sorted((c.account for c in configured), key=lambda a: a.provider)
        self._accounts = {provider: tuple(group) for provider, group in groupby(ordered, key=lambda a: a.provider)}
        self._rejected_for_s = rejected_for_s
        self._clock = clock
        self._disabled_until: dict[tuple[str, str], float] = {}

    async def start(self) -> None:
        """Nothing to start: the accounts were read with the config."""

    async def close(self) -> None:
        """Nothing to close."""

    def accounts(self, provider: str) -> tuple[Account, ...]:
        return self._accounts.get(provider, ())

    def usable(self, account: Account) -> bool:
        key = (account.provider, account.alias)
        until = self._disabled_until.get(key)
        if until is None:
            return True
        if until <= self._clock():
            del self._disabled_until[key]
            return True
        return False

    async def lease(self, account: Account) -> Secret | None:
        return self._keys[(account.provider, account.alias)]

    async def report(self, account: Account, outcome: KeyOutcome) -> None:
        key = (account.provider, account.alias)
        if outcome is KeyOutcome.REJECTED:
            self._disabled_until[key] = self._clock() + self._rejected_for_s
        else:
            self._disabled_until.pop(key, None)
