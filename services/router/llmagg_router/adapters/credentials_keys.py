"""The KeySource of the suite: accounts and leased keys from the credentials service over gRPC.

- Accounts: listed every `refresh_s` (one ListAccounts call); a change of the set bumps `generation`,
  so the resolver re-derives its routable providers on the next request. Enabled flags and key
  versions come with each listing.
- Keys: leased on first use and held for the lease's TTL; a key version that changed in a listing
  drops the lease at once (a rotation is seen within `refresh_s`, and never later than the TTL).
  Leases that were used are renewed in the background before they expire, so requests do not wait.
- A rejection (401/403) disables the account here at once and is reported; the credentials service
  disables it for every router. After `rejected_for_s` the router probes it once more; a success
  re-enables it everywhere.
- With the credentials service (or its Vault) unreachable, held leases keep serving, even past
  their TTL; `healthy()` says so (the `credentials` health name of the router).
The service token travels as gRPC metadata and is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc

from llmagg.common.grpc_client import service_channel
from llmagg.common.logging import log_fields
from llmagg.common.secrets import Secret
from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg.credentials.v1 import credentials_pb2_grpc
from llmagg.registry import Account, Provider, RegistryError, fill_placeholders
from llmagg_router.domain.ports import KeyOutcome, KeyUnavailable

log = logging.getLogger(__name__)

SERVICE_TOKEN_METADATA = "x-llmagg-service-token"
_CALL_TIMEOUT_S = 3.0
_GONE = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED)


@dataclass(frozen=True)
class _State:
    account: Account
    enabled: bool
    disabled_by: str
    probe_after: float  # wall time after which an account a provider rejected is tried again
    key_version: int


@dataclass
class _Lease:
    key: Secret | None
    key_version: int
    expires_at: float  # monotonic
    used: bool = False


def _wall_time(rfc3339: str) -> float:
    try:
        return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class CredentialsKeySource:
    def __init__(
        self,
        address: str,
        token: Secret | None,
        providers: Mapping[str, Provider],
        *,
        refresh_s: float = 5.0,
        rejected_for_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._address = address
        self._metadata = ((SERVICE_TOKEN_METADATA, token.reveal()),) if token else ()
        self._providers = providers
        self._refresh_s = refresh_s
        self._rejected_for_s = rejected_for_s
        self._clock = clock
        self._wall_clock = wall_clock
        self.generation = 0
        self._states: dict[str, _State] = {}
        self._by_provider: dict[str, tuple[Account, ...]] = {}
        self._leases: dict[str, _Lease] = {}
        # alias -> (monotonic time until which it is not used, the key version rejected): disabled here at
        # once, before the listing says so; a rotation (a new key version) lifts it.
        self._rejected: dict[str, tuple[float, int]] = {}
        self._skipped: set[str] = set()  # aliases this router cannot use (reported once)
        self._problem: str | None = "not refreshed yet"
        self._channel: grpc.aio.Channel | None = None
        self._stub: credentials_pb2_grpc.CredentialsServiceStub | None = None
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the channel (on the serving loop), read the accounts once, then keep them fresh."""
        self._channel = service_channel(self._address)
        self._stub = credentials_pb2_grpc.CredentialsServiceStub(self._channel)
        await self.refresh()
        self._task = asyncio.create_task(self._keep_fresh())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None:
            await self._channel.close()

    async def healthy(self) -> bool:
        if self._problem:
            raise ConnectionError(self._problem)
        return True

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
                await self._renew_used_leases()
            except Exception:  # the loop must outlive any one bad round
                log.exception("refreshing accounts from the credentials service failed")

    # --- the listing --------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Read the accounts; on failure keep what is known and say so (once per outage)."""
        try:
            response = await self._stub.ListAccounts(
                pb.ListAccountsRequest(), metadata=self._metadata, timeout=_CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            problem = f"credentials service at {self._address}: {error.code().name} {error.details()}"
            if self._problem != problem:
                log.warning("cannot list accounts, keeping the %d known: %s", len(self._states), problem)
            self._problem = problem
            return
        if self._problem:
            log.info("accounts listed from the credentials service", extra=log_fields(accounts=len(response.accounts)))
        self._problem = None
        self._apply(response.accounts)

    def _apply(self, listed) -> None:
        states: dict[str, _State] = {}
        for item in listed:
            provider = self._providers.get(item.provider)
            try:
                if provider is None:
                    raise RegistryError(f"its provider {item.provider!r} is unknown to this router")
                base_url = fill_placeholders(provider.base_url, item.params, f"account {item.alias!r}")
            except RegistryError as problem:
                if item.alias not in self._skipped:
                    self._skipped.add(item.alias)
                    log.warning("account %s skipped: %s", item.alias, problem)
                continue
            states[item.alias] = _State(
                account=Account(item.provider, item.alias, base_url),
                enabled=item.enabled,
                disabled_by=item.disabled_by,
                probe_after=_wall_time(item.disabled_at) + self._rejected_for_s,
                key_version=item.key_version,
            )
        for alias, lease in list(self._leases.items()):
            state = states.get(alias)
            if state is None or state.key_version != lease.key_version or not state.enabled:
                del self._leases[alias]  # rotated, disabled or gone: never use the held key again
        for alias, (_, rejected_version) in list(self._rejected.items()):
            state = states.get(alias)
            if state is None or state.key_version != rejected_version:
                del self._rejected[alias]  # gone, or rotated: the new key deserves a try
        by_provider: dict[str, list[Account]] = {}
        for state in states.values():  # listed highest priority first
            by_provider.setdefault(state.account.provider, []).append(state.account)
        ordered = {provider: tuple(accounts) for provider, accounts in by_provider.items()}
        self._states = states
        if ordered != self._by_provider:
            self._by_provider = ordered
            self.generation += 1

    # --- KeySource ----------------------------------------------------------------------------------
    def accounts(self, provider: str) -> tuple[Account, ...]:
        return self._by_provider.get(provider, ())

    def usable(self, account: Account) -> bool:
        alias = account.alias
        rejected = self._rejected.get(alias)
        if rejected is not None:
            if rejected[0] > self._clock():
                return False
            del self._rejected[alias]
        state = self._states.get(alias)
        if state is None:
            return False
        if state.enabled:
            return True
        return state.disabled_by == "upstream" and self._wall_clock() >= state.probe_after

    async def lease(self, account: Account) -> Secret | None:
        held = self._leases.get(account.alias)
        if held is not None and held.expires_at > self._clock():
            held.used = True
            return held.key
        return await self._lease(account, held)

    async def _lease(self, account: Account, held: _Lease | None) -> Secret | None:
        state = self._states.get(account.alias)
        try:
            response = await self._stub.Lease(
                pb.LeaseRequest(
                    provider=account.provider, alias=account.alias, probe=state is not None and not state.enabled
                ),
                metadata=self._metadata,
                timeout=_CALL_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _GONE:
                self._leases.pop(account.alias, None)
                raise KeyUnavailable(error.details() or error.code().name) from None
            if held is not None:
                log.warning(
                    "lease renewal failed (%s); serving the held key",
                    error.code().name,
                    extra=log_fields(provider=account.provider, account=account.alias),
                )
                held.used = True
                return held.key
            raise KeyUnavailable(f"the credentials service cannot lease a key now ({error.code().name})") from None
        lease = _Lease(
            key=Secret(response.api_key) if response.api_key else None,
            key_version=response.key_version,
            expires_at=self._clock() + response.ttl_seconds,
            used=True,
        )
        self._leases[account.alias] = lease
        return lease.key

    async def _renew_used_leases(self) -> None:
        """Renew, before they expire, the leases requests used since the last round."""
        horizon = self._clock() + 2 * self._refresh_s
        for alias, lease in list(self._leases.items()):
            state = self._states.get(alias)
            if state is None or not lease.used or lease.expires_at > horizon:
                continue
            lease.used = False
            with contextlib.suppress(KeyUnavailable):
                await self._lease(state.account, lease)
                if alias in self._leases:
                    self._leases[alias].used = False

    async def report(self, account: Account, outcome: KeyOutcome) -> None:
        alias = account.alias
        state = self._states.get(alias)
        if outcome is KeyOutcome.REJECTED:
            lease = self._leases.pop(alias, None)
            version = lease.key_version if lease else (state.key_version if state else 0)
            self._rejected[alias] = (self._clock() + self._rejected_for_s, version)
            await self._report(account, pb.OUTCOME_REJECTED, version)
        elif alias in self._rejected or (state is not None and not state.enabled):
            # A probe of an account a provider had rejected succeeded: enable it everywhere.
            self._rejected.pop(alias, None)
            await self._report(account, pb.OUTCOME_ACCEPTED, state.key_version if state else 0)

    async def _report(self, account: Account, outcome: int, key_version: int) -> None:
        try:
            await self._stub.ReportOutcome(
                pb.ReportOutcomeRequest(
                    provider=account.provider, alias=account.alias, outcome=outcome, key_version=key_version
                ),
                metadata=self._metadata,
                timeout=_CALL_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as error:
            log.warning(
                "could not report a key outcome to the credentials service: %s",
                error.code().name,
                extra=log_fields(provider=account.provider, account=account.alias),
            )
