"""Accounts and keys from the credentials service (ListAccounts, Lease) with discovery's service token,
through the suite's credentials client (llmagg.credentials.client).

The listing is read again when older than `refresh_s`, leases held for their TTL; keys stay in memory,
wrapped in Secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from llmagg.common.secrets import Secret
from llmagg.credentials.client import CredentialsClient, CredentialsError
from llmagg.registry import Provider, RegistryError, fill_placeholders
from llmagg_discovery.domain.ports import ProviderAccount, SourceError

_CALL_TIMEOUT_S = 5.0


class CredentialsAccounts:
    def __init__(
        self,
        address: str,
        token: Secret | None,
        providers: Mapping[str, Provider],
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = CredentialsClient(
            address, token, refresh_s=refresh_s, call_timeout_s=_CALL_TIMEOUT_S, clock=clock
        )
        self._providers = providers
        self._refresh_s = refresh_s

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def accounts(self) -> tuple[ProviderAccount, ...]:
        try:
            listed_accounts = await self._client.recent_accounts(self._refresh_s)
        except CredentialsError as error:
            raise SourceError(f"cannot list accounts: credentials answered {error.code.name}") from None
        listed = []
        for item in listed_accounts:
            provider = self._providers.get(item.provider)
            if provider is None or not item.enabled:
                continue
            try:
                base_url = fill_placeholders(provider.base_url, item.params, f"account {item.alias!r}")
            except RegistryError:
                continue
            listed.append(ProviderAccount(item.provider, item.alias, base_url))
        return tuple(listed)

    async def key(self, account: ProviderAccount) -> Secret | None:
        held = self._client.held(account.alias)
        if held is not None:
            return held.key
        try:
            lease = await self._client.lease(account.provider, account.alias)
        except CredentialsError as error:
            raise SourceError(f"no key for {account.alias}: credentials answered {error.code.name}") from None
        return lease.key
