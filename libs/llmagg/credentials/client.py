"""The one client of the credentials service for the suite's own services (router, ratelimit, discovery):
its channel, the service token this service is known by, the account listing and the leased keys.

- The listing: `refresh()` reads it once; `poll(on_listing)` reads it every `refresh_s` in the
  background and hands each one to `on_listing`; `recent_accounts(max_age_s)` reads it only when the
  last one is older. While credentials cannot be reached the last listing stays, and `healthy()` (a
  readiness probe) says why, logged once per outage.
- Leases: `lease()` asks for a key and holds it for its TTL (`held()`); what a caller does when a
  lease cannot be had (serve a held key, fail) is its own.
The token travels as gRPC metadata and is never logged; keys stay wrapped in Secret.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc

from llmagg.common.grpc_client import service_channel
from llmagg.common.logging import log_fields
from llmagg.common.peers import Periodic, Reachability, service_metadata
from llmagg.common.secrets import Secret
from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg.credentials.v1 import credentials_pb2_grpc

log = logging.getLogger(__name__)

# A lease refused for good (the account is gone, disabled, or not this caller's): no held key may serve.
_GONE = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED)

OnListing = Callable[[Sequence[pb.Account], int], Awaitable[None] | None]


class CredentialsError(Exception):
    """Credentials did not answer a call (or refused it)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name} {details}".strip())
        self.code, self.details = code, details

    @property
    def gone(self) -> bool:
        """Refused for good, as opposed to unreachable for now."""
        return self.code in _GONE


@dataclass
class Lease:
    key: Secret | None
    key_version: int
    expires_at: float  # on the client's clock (monotonic)
    used: bool = False  # a caller used it since the last renewal round


class CredentialsClient:
    def __init__(
        self,
        address: str,
        token: Secret | None,
        *,
        refresh_s: float = 5.0,
        call_timeout_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address
        self._metadata = service_metadata(token)
        self.refresh_s = refresh_s
        self._timeout_s = call_timeout_s
        self._clock = clock
        self._channel: grpc.aio.Channel | None = None
        self._stub: credentials_pb2_grpc.CredentialsServiceStub | None = None
        self.accounts: tuple[pb.Account, ...] = ()  # the last listing read
        self.listings = 0  # listings started, numbering each
        self._listed_at = float("-inf")
        self.leases: dict[str, Lease] = {}  # by account alias
        self._reachability = Reachability(log, "not listed yet")
        self.healthy = self._reachability.healthy
        self._poller: Periodic | None = None
        self._last_error = CredentialsError(grpc.StatusCode.UNAVAILABLE, "not listed yet")

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the channel (on the serving loop)."""
        self._channel = service_channel(self.address)
        self._stub = credentials_pb2_grpc.CredentialsServiceStub(self._channel)

    def poll(self, on_listing: OnListing, after: Callable[[], Awaitable[None]] | None = None) -> None:
        """Read the listing every `refresh_s` from now on, hand each to `on_listing`, then run `after`."""

        async def round_() -> None:
            if await self.refresh() is not None:
                await _call(on_listing, self.accounts, self.listings)
            if after is not None:
                await after()

        self._poller = Periodic(self.refresh_s, round_, log, "refreshing accounts from credentials")
        self._poller.start()

    async def close(self) -> None:
        if self._poller is not None:
            await self._poller.stop()
        if self._channel is not None:
            await self._channel.close()

    # --- the listing --------------------------------------------------------------------------------
    async def refresh(self) -> tuple[pb.Account, ...] | None:
        """Read the listing (numbered in `listings`); None when credentials cannot be reached (the last
        listing stays)."""
        self.listings += 1
        try:
            response = await self._stub.ListAccounts(
                pb.ListAccountsRequest(), metadata=self._metadata, timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as error:
            self._reachability.failed(
                f"credentials service at {self.address}: {error.code().name} {error.details()}",
                f"cannot list accounts, keeping the {len(self.accounts)} known: %s",
            )
            self._last_error = CredentialsError(error.code(), error.details() or "")
            return None
        if self._reachability.answered():
            log.info("accounts listed from the credentials service", extra=log_fields(accounts=len(response.accounts)))
        self.accounts, self._listed_at = tuple(response.accounts), self._clock()
        return self.accounts

    async def recent_accounts(self, max_age_s: float) -> tuple[pb.Account, ...]:
        """The listing, read again only when the last is older than `max_age_s`; the last one while
        credentials cannot be reached (CredentialsError when there is none)."""
        if self._clock() - self._listed_at < max_age_s:
            return self.accounts
        if await self.refresh() is None and not self.accounts:
            raise self._last_error
        return self.accounts

    # --- keys ---------------------------------------------------------------------------------------
    def held(self, alias: str) -> Lease | None:
        """The lease held for `alias` while its TTL lasts."""
        lease = self.leases.get(alias)
        return lease if lease is not None and lease.expires_at > self._clock() else None

    async def lease(self, provider: str, alias: str, probe: bool = False) -> Lease:
        """A key for the account, held from now for its TTL (CredentialsError when none is given)."""
        try:
            response = await self._stub.Lease(
                pb.LeaseRequest(provider=provider, alias=alias, probe=probe),
                metadata=self._metadata,
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _GONE:
                self.leases.pop(alias, None)
            raise CredentialsError(error.code(), error.details() or "") from None
        lease = Lease(
            key=Secret(response.api_key) if response.api_key else None,
            key_version=response.key_version,
            expires_at=self._clock() + response.ttl_seconds,
        )
        self.leases[alias] = lease
        return lease

    async def report_outcome(self, provider: str, alias: str, outcome: int, key_version: int) -> pb.Account | None:
        """Tell credentials how a key fared; the account as it recorded that (None: nothing recorded)."""
        try:
            response = await self._stub.ReportOutcome(
                pb.ReportOutcomeRequest(provider=provider, alias=alias, outcome=outcome, key_version=key_version),
                metadata=self._metadata,
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as error:
            raise CredentialsError(error.code(), error.details() or "") from None
        return response.account if response.HasField("account") else None


async def _call(callback: OnListing, accounts: Sequence[pb.Account], listing: int) -> None:
    result = callback(accounts, listing)
    if inspect.isawaitable(result):
        await result
