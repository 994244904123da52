"""Accounts and keys from the credentials service (ListAccounts, Lease) with discovery's service token.

The listing is cached for `refresh_s`, leases for their TTL; keys stay in memory, wrapped in Secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import grpc

from llmagg.common.grpc_client import service_channel
from llmagg.common.peers import service_metadata
from llmagg.common.secrets import Secret
from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg.credentials.v1 import credentials_pb2_grpc
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
        self._address = address
        self._metadata = service_metadata(token)
        self._providers = providers
        self._refresh_s = refresh_s
        self._clock = clock
        self._channel: grpc.aio.Channel | None = None
        self._stub: credentials_pb2_grpc.CredentialsServiceStub | None = None
        self._listed: tuple[ProviderAccount, ...] = ()
        self._listed_at = float("-inf")
        self._leases: dict[str, tuple[Secret | None, float]] = {}

    async def start(self) -> None:
        self._channel = service_channel(self._address)
        self._stub = credentials_pb2_grpc.CredentialsServiceStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def accounts(self) -> tuple[ProviderAccount, ...]:
        if self._clock() - self._listed_at < self._refresh_s:
            return self._listed
        try:
            response = await self._stub.ListAccounts(
                pb.ListAccountsRequest(), metadata=self._metadata, timeout=_CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            if self._listed:
                return self._listed  # what was known keeps the sources going while credentials is away
            raise SourceError(f"cannot list accounts: credentials answered {error.code().name}") from None
        listed = []
        for item in response.accounts:
            provider = self._providers.get(item.provider)
            if provider is None or not item.enabled:
                continue
            try:
                base_url = fill_placeholders(provider.base_url, item.params, f"account {item.alias!r}")
            except RegistryError:
                continue
            listed.append(ProviderAccount(item.provider, item.alias, base_url))
        self._listed, self._listed_at = tuple(listed), self._clock()
        return self._listed

    async def key(self, account: ProviderAccount) -> Secret | None:
        held = self._leases.get(account.alias)
        if held is not None and held[1] > self._clock():
            return held[0]
        try:
            response = await self._stub.Lease(
                pb.LeaseRequest(provider=account.provider, alias=account.alias),
                metadata=self._metadata,
                timeout=_CALL_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as error:
            raise SourceError(f"no key for {account.alias}: credentials answered {error.code().name}") from None
        key = Secret(response.api_key) if response.api_key else None
        self._leases[account.alias] = (key, self._clock() + response.ttl_seconds)
        return key
