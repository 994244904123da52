"""Accounts and keys from LLMAGG_CONFIG and the environment (no credentials service)."""

from __future__ import annotations

from llmagg.common.secrets import Secret
from llmagg.registry import ConfiguredAccount
from llmagg_discovery.domain.ports import ProviderAccount


class ConfigAccounts:
    def __init__(self, configured: tuple[ConfiguredAccount, ...]) -> None:
        self._keys = {c.account.alias: c.key for c in configured}
        self._accounts = tuple(
            ProviderAccount(c.account.provider, c.account.alias, c.account.base_url) for c in configured
        )

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def accounts(self) -> tuple[ProviderAccount, ...]:
        return self._accounts

    async def key(self, account: ProviderAccount) -> Secret | None:
        return self._keys.get(account.alias)
