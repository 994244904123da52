"""The KeySource of the suite: accounts and leased keys from the credentials service over gRPC.

- Accounts: listed every `refresh_s` (one ListAccounts call); a change of the set bumps `generation`,
  so the resolver re-derives its routable providers on the next request. Enabled flags and key
  versions come with each listing.
- Keys: leased on first use and held for the lease's TTL; a key version that changed in a listing
  drops the lease at once (a rotation is seen within `refresh_s`, and never later than the TTL).
  Leases that were used are renewed in the background before they expire, so requests do not wait.
- A rejection (401/403) disables the account here at once and is reported; the credentials service
  disables it for every router. After `rejected_for_s` the router probes it once more; a success
  re-enables it everywhere. An admin's enable after the rejection was recorded is a fresh start: the
  first listing that shows it lifts the rejection here too (every replica reads the same listing).
- With the credentials service (or its Vault) unreachable, held leases keep serving, even past
  their TTL; `healthy()` says so (the `credentials` health name of the router).
The calls, the listing poll and the lease cache are the suite's one credentials client
(llmagg.credentials.client); what this module adds is the router's bookkeeping of them.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from llmagg.common.logging import log_fields
from llmagg.common.secrets import Secret
from llmagg.credentials.client import CredentialsClient, CredentialsError, Lease
from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg.registry import Account, Provider, RegistryError, fill_placeholders
from llmagg_router.domain.ports import KeyOutcome, KeyUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _State:
    account: Account
    enabled: bool
    disabled_by: str
    probe_after: float  # wall time after which an account a provider rejected is tried again
    key_version: int
    updated_at: str  # RFC 3339 (seconds) of the account's last write in credentials


@dataclass
class _Rejection:
    """An account this router saw rejected, benched here until `until` (monotonic) or a rotation."""

    until: float
    key_version: int
    # Once credentials has recorded the disablement: listings numbered above `recorded_after` that show
    # the account enabled, written no earlier than `recorded_at`, mean someone enabled it since.
    recorded_after: int | None = None
    recorded_at: str = ""

    def enabled_since(self, state: _State, listing: int) -> bool:
        return (
            self.recorded_after is not None
            and listing > self.recorded_after
            and state.enabled
            and state.updated_at >= self.recorded_at
        )


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
        self._client = CredentialsClient(address, token, refresh_s=refresh_s, clock=clock)
        self._providers = providers
        self._refresh_s = refresh_s
        self._rejected_for_s = rejected_for_s
        self._clock = clock
        self._wall_clock = wall_clock
        self.generation = 0
        self._states: dict[str, _State] = {}
        self._by_provider: dict[str, tuple[Account, ...]] = {}
        self._leases = self._client.leases
        # Accounts disabled here at once, before the listing says so; a rotation (a new key version) or an
        # enable recorded after the rejection lifts it.
        self._rejected: dict[str, _Rejection] = {}
        self._skipped: set[str] = set()  # aliases this router cannot use (reported once)
        self.healthy = self._client.healthy

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the channel (on the serving loop), read the accounts once, then keep them fresh."""
        await self._client.start()
        await self.refresh()
        self._client.poll(self._apply, after=self._renew_used_leases)

    async def close(self) -> None:
        await self._client.close()

    # --- the listing --------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Read the accounts; on failure keep what is known (the client says so, once per outage)."""
        listed = await self._client.refresh()
        if listed is not None:
            self._apply(listed, self._client.listings)

    def _apply(self, listed: Sequence[pb.Account], listing: int) -> None:
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
                updated_at=item.updated_at,
            )
        for alias, lease in list(self._leases.items()):
            state = states.get(alias)
            if state is None or state.key_version != lease.key_version or not state.enabled:
                del self._leases[alias]  # rotated, disabled or gone: never use the held key again
        for alias, rejection in list(self._rejected.items()):
            state = states.get(alias)
            if state is None or state.key_version != rejection.key_version or rejection.enabled_since(state, listing):
                del self._rejected[alias]  # gone, rotated or enabled again: the key deserves a try
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
            if rejected.until > self._clock():
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

    async def _lease(self, account: Account, held: Lease | None) -> Secret | None:
        state = self._states.get(account.alias)
        probe = state is not None and not state.enabled
        try:
            lease = await self._client.lease(account.provider, account.alias, probe=probe)
        except CredentialsError as error:
            if error.gone:
                raise KeyUnavailable(error.details or error.code.name) from None
            if held is not None:
                log.warning(
                    "lease renewal failed (%s); serving the held key",
                    error.code.name,
                    extra=log_fields(provider=account.provider, account=account.alias),
                )
                held.used = True
                return held.key
            raise KeyUnavailable(f"the credentials service cannot lease a key now ({error.code.name})") from None
        lease.used = True
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
            rejection = _Rejection(self._clock() + self._rejected_for_s, version)
            self._rejected[alias] = rejection
            recorded = await self._report(account, pb.OUTCOME_REJECTED, version)
            if recorded is not None and not recorded.enabled:
                rejection.recorded_after, rejection.recorded_at = self._client.listings, recorded.updated_at
        elif alias in self._rejected or (state is not None and not state.enabled):
            # A probe of an account a provider had rejected succeeded: enable it everywhere.
            self._rejected.pop(alias, None)
            await self._report(account, pb.OUTCOME_ACCEPTED, state.key_version if state else 0)

    async def _report(self, account: Account, outcome: int, key_version: int) -> pb.Account | None:
        """The account as credentials recorded the outcome (None when it could not be told)."""
        try:
            return await self._client.report_outcome(account.provider, account.alias, outcome, key_version)
        except CredentialsError as error:
            log.warning(
                "could not report a key outcome to the credentials service: %s",
                error.code.name,
                extra=log_fields(provider=account.provider, account=account.alias),
            )
            return None
