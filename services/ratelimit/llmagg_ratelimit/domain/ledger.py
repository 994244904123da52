"""The quota ledger: reserve before an attempt, settle with the truth after it, headroom for ranking,
client limits for the gateway, and the usage rows every settlement writes.

What a settlement charges:
- the request counts unless it never reached the provider (`not_sent`, `connect`);
- tokens: what the provider reported; where it reported nothing, the estimate stays charged if the
  request may have used tokens (`ok` without usage, `abandoned`, `timeout`), else nothing;
- the client's token budgets get the same tokens.
A reservation that is never settled (its router died) keeps its estimate charged (the call probably
reached the provider) and is forgotten after `reservation_ttl_s`; a settlement that comes after that
charges the truth to the windows current then.

Leases: asked for several requests at once, the ledger may reserve them together (at most
`lease_share` of what each limit has left, never past the end of the shortest window nor longer than
`lease_s`), and the router spends them without a call per attempt. A lease's uses settle `leased`
(only the difference from their estimates is charged, to the lease's windows); what the router did not
spend comes back in a LeaseReturn. So leasing never lets a key past a limit: what is leased is charged.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from llmagg_ratelimit.domain.clients import ClientPolicy
from llmagg_ratelimit.domain.learning import learn
from llmagg_ratelimit.domain.limits import LIMIT_PLACEHOLDER, LimitBook, QuotaKey
from llmagg_ratelimit.domain.ports import CounterStore, Entry, Reading, UsageQuery, UsageRecord, UsageStore, UsageTotal
from llmagg_ratelimit.domain.windows import Dimension

log = logging.getLogger(__name__)

NOT_SENT = frozenset({"not_sent", "connect"})  # never reached the provider: the request is given back
MAY_HAVE_USED = frozenset({"ok", "abandoned", "timeout"})  # without usage, the estimate stays charged
_SHORTEST_LEASE_S = 0.05  # a window ending sooner than this gets no lease: the attempt reserves alone
_MAX_LEASE_TOKENS = 10**9  # what a LeaseReturn may carry back


@dataclass(frozen=True)
class Decision:
    granted: bool
    reservation_id: str = ""
    retry_after_s: float = 0.0
    reason: str = ""
    requests: int = 1  # more than one: a lease, spendable for valid_for_s
    tokens: int = 0
    valid_for_s: float = 0.0
    remaining: float = 0.0  # share of the tightest window free once this is charged (0 when denied)


@dataclass(frozen=True)
class LeaseReturn:
    reservation_id: str
    requests: int = 0
    tokens: int = 0
    unclaimed: bool = False


@dataclass(frozen=True)
class Settled:
    applied: int  # settlements applied
    failed: tuple[int, ...] = ()  # indices of those that could not be applied (each logged)


@dataclass(frozen=True)
class QuotaWindow:
    """One limited window as an operator reads it: `name` (rpd, ...) on `applies_to`, used of limit."""

    key: QuotaKey
    name: str
    applies_to: str
    dimension: str
    used: int
    limit: int
    resets_in_s: float
    resets_at: float  # seconds since the epoch


@dataclass(frozen=True)
class Headroom:
    remaining: float
    retry_after_s: float = 0.0


@dataclass(frozen=True)
class ClientDecision:
    allowed: bool
    limit: int | None  # the requests per minute in force (None: none)
    remaining: int | None
    reset_s: float
    retry_after_s: float = 0.0
    reason: str = ""
    # What denied it: the requests per minute ("rpm") or a token budget ("tpd", "tpmonth").
    limit_name: str = ""
    denied_limit: int | None = None


@dataclass(frozen=True)
class Settlement:
    key: QuotaKey
    reservation_id: str = ""
    client_id: str = ""
    estimated_tokens: int = 0
    usage_known: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    outcome: str = "ok"
    latency_ms: float = 0.0
    upstream_status: int = 0
    upstream_headers: dict[str, str] = field(default_factory=dict)
    retry_after_s: float = 0.0
    quota_id: str = ""
    ended_at: float = 0.0
    leased: bool = False  # spent from the lease reservation_id names
    requested_model: str = ""  # what the client asked for ("auto", an alias)
    trace_id: str = ""  # the attempt's trace when it was sampled
    first_token_ms: float | None = None  # to the first content chunk of a streamed answer; None: not measured

    def charged_tokens(self) -> int:
        if self.usage_known:
            return self.prompt_tokens + self.completion_tokens
        return self.estimated_tokens if self.outcome in MAY_HAVE_USED else 0


def _remaining(readings: Sequence[Reading]) -> float:
    """Share of the tightest window still free, 0..1 (1 when no limit is in force)."""
    remaining = 1.0
    for reading in readings:
        if reading.limit is not None:
            remaining = min(remaining, max(reading.limit - reading.used, 0) / reading.limit if reading.limit else 0.0)
    return remaining


def _denial(entries: Sequence[Entry], readings: Sequence[Reading]) -> tuple[float, str]:
    """The wait until every entry that blocked has room again, and what blocked."""
    blocked = [
        (r.wait_s, e.label.replace(LIMIT_PLACEHOLDER, str(r.limit)))
        for e, r in zip(entries, readings, strict=True)
        if r.blocks(e.amount)
    ]
    if not blocked:
        return 0.0, ""
    wait, label = max(blocked)
    return max(wait, 0.0), label


class Ledger:
    def __init__(
        self,
        book: LimitBook,
        counters: CounterStore,
        usage: UsageStore,
        clients: ClientPolicy,
        *,
        reservation_ttl_s: float = 960.0,
        lease_s: float = 1.0,
        lease_share: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.book = book
        self.counters = counters
        self.usage = usage
        self.clients = clients
        self._ttl_s = reservation_ttl_s
        self._lease_s = lease_s
        self._lease_share = lease_share
        self._clock = clock
        # batch id -> usage rows of a batch applied to the counters whose write failed: stored when the
        # router sends that batch again (it does until it is answered), never charged twice.

    async def reserve(
        self, key: QuotaKey, estimated_tokens: int, requests: int = 1, reservation_id: str = ""
    ) -> Decision:
        """One request and its estimate on every window of the key; with `requests` > 1, a lease of up to
        that many when the limits have room for more than one. `reservation_id`: the caller's name for
        it (so that it can give it back unseen, `release`), else a new one."""
        now = self._clock()
        estimated_tokens = max(estimated_tokens, 0)
        entries = self.book.entries(key, estimated_tokens, now)
        reservation_id = reservation_id or secrets.token_hex(12)
        if requests > 1 and self._lease_s > 0:
            lease = await self._lease(entries, estimated_tokens, requests, now, reservation_id)
            if lease is not None:
                return lease
        decision = await self.counters.reserve(entries, reservation_id, self._ttl_s, now)
        if decision.granted:
            return Decision(True, reservation_id, tokens=estimated_tokens, remaining=_remaining(decision.readings))
        wait, label = _denial(entries, decision.readings)
        return Decision(False, retry_after_s=wait, reason=label)

    async def _lease(
        self, entries: list[Entry], estimated_tokens: int, requests: int, now: float, reservation_id: str
    ) -> Decision | None:
        """Up to `requests` reserved together, each limit giving at most its share of what it has left;
        None when that is one request or less (or the room went to another replica meanwhile)."""
        readings = await self.counters.peek(entries, now)
        in_force = [(e, r) for e, r in zip(entries, readings, strict=True) if r.limit is not None]
        valid_for_s = min([self._lease_s, *(e.expires_at - now for e, _ in in_force if e.expires_at > 0)])
        if valid_for_s < _SHORTEST_LEASE_S:
            return None
        count = min(requests, _MAX_LEASE_TOKENS // estimated_tokens) if estimated_tokens else requests
        for entry, reading in in_force:
            share = int(max(reading.limit - reading.used, 0) * self._lease_share)
            if entry.dimension is Dimension.REQUESTS:
                count = min(count, share)
            elif estimated_tokens:
                count = min(count, share // estimated_tokens)
        if count <= 1:
            return None
        tokens = count * estimated_tokens
        leased = [replace(e, amount=count if e.dimension is Dimension.REQUESTS else tokens) for e in entries]
        decision = await self.counters.reserve(leased, reservation_id, self._ttl_s, now)
        if not decision.granted:
            return None
        return Decision(
            True,
            reservation_id,
            requests=count,
            tokens=tokens,
            valid_for_s=valid_for_s,
            remaining=_remaining(decision.readings),
        )

    async def _return_leases(self, returns: Sequence[LeaseReturn], now: float) -> None:
        """Give back what is left of each lease and forget it; an unclaimed one (its answer never reached the
        router, whatever it was) gives back everything it charged."""
        for item in returns:
            if item.unclaimed:
                await self.counters.release(item.reservation_id, now)
            else:
                await self.counters.settle(item.reservation_id, -item.requests, -item.tokens, now)

    async def settle(
        self, settlements: Sequence[Settlement], returns: Sequence[LeaseReturn] = (), batch_id: str = ""
    ) -> Settled:
        """Apply a batch of settlements and lease returns; a batch named `batch_id` is applied once (the
        router sends it again when its call timed out, which may have been after it was applied). One
        settlement that cannot be applied costs the others of the batch (other requests, other clients)
        nothing: it is logged and reported, the rest applied."""
        now = self._clock()
        if batch_id and not await self.counters.first_time(f"settle|{batch_id}", self._ttl_s, now):
            # Applied to the counters already (here or by another replica, which may have died before its
            # rows were stored): the rows go to the usage store again, which keeps a batch's rows once.
            log.info("a batch of settlements came again: already applied to the counters")
            await self.usage.write([self._usage_row(item, now) for item in settlements], batch_id)
            return Settled(0)
        rows: list[UsageRecord] = []
        failed = []
        for index, item in enumerate(settlements):
            try:
                rows.append(await self._settle_one(item, now))
            except Exception:
                log.exception("settlement %d of a batch (%s) could not be applied", index, "/".join(item.key))
                failed.append(index)
        await self._return_leases(returns, now)  # before the rows: a failed write must not keep them
        if rows:
            await self.usage.write(rows, batch_id)  # when it fails, the router sends the batch again
        return Settled(len(rows), tuple(failed))

    async def _settle_one(self, item: Settlement, now: float) -> UsageRecord:
        """Charge one settlement's truth to the counters; its usage row."""
        tokens = item.charged_tokens()
        counted = item.outcome not in NOT_SENT
        found = False
        if item.reservation_id:
            found = await self.counters.settle(
                item.reservation_id, 0 if counted else -1, tokens - item.estimated_tokens, now, item.leased
            )
        if item.leased and not found:
            # The lease is gone (returned, expired): what this use spent beyond its estimate still counts.
            extra = tokens - item.estimated_tokens
            if extra > 0:
                charges = [e for e in self.book.entries(item.key, extra, now) if e.dimension is Dimension.TOKENS]
                await self.counters.charge(charges, now)
        elif not found and (counted or tokens):
            charges = [e for e in self.book.entries(item.key, tokens, now) if counted or e.dimension.value == "tokens"]
            await self.counters.charge(charges, now)
        lesson = learn(
            self.book, item.key, item.upstream_status, item.upstream_headers, item.retry_after_s, item.quota_id, now
        )
        if lesson:
            await self.counters.learn(lesson.limits, lesson.caps, now)
        if item.client_id and tokens:
            await self.counters.charge(self.clients.charge(item.client_id, tokens, now), now)
        return self._usage_row(item, now)

    def _usage_row(self, item: Settlement, now: float) -> UsageRecord:
        price_in, price_out = self.book.price(item.key)
        prompt, completion = (item.prompt_tokens, item.completion_tokens) if item.usage_known else (0, 0)
        return UsageRecord(
            ts=item.ended_at or now,
            client_id=item.client_id,
            provider=item.key.provider,
            account=item.key.account,
            model=item.key.model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            latency_ms=item.latency_ms,
            outcome=item.outcome,
            cost_avoided_usd=(prompt * price_in + completion * price_out) / 1e6,
            requested_model=item.requested_model,
            trace_id=item.trace_id,
            first_token_ms=item.first_token_ms,
        )

    async def headroom(self, keys: Sequence[QuotaKey]) -> dict[QuotaKey, Headroom]:
        """What is left of the tightest window of each key (0..1), and the wait when nothing is."""
        now = self._clock()
        per_key = [self.book.entries(key, 0, now) for key in keys]
        flat = [entry for entries in per_key for entry in entries]
        readings = await self.counters.peek(flat, now)
        result: dict[QuotaKey, Headroom] = {}
        index = 0
        for key, entries in zip(keys, per_key, strict=True):
            mine = readings[index : index + len(entries)]
            index += len(entries)
            waits = [reading.wait_s for reading in mine if reading.blocks(1)]
            result[key] = Headroom(0.0, max(waits)) if waits else Headroom(_remaining(mine))
        return result

    async def quota_windows(self, keys: Sequence[QuotaKey]) -> list[QuotaWindow]:
        """Every window of these keys that has a limit, each once (keys of one account share its pool)."""
        now = self._clock()
        pairs = [(key, entry) for key in keys for entry in self.book.entries(key, 0, now)]
        readings = await self.counters.peek([entry for _, entry in pairs], now)
        windows, seen = [], set()
        for (key, entry), reading in zip(pairs, readings, strict=True):
            if reading.limit is None or entry.tied_to_cap or entry.counter in seen:
                continue
            seen.add(entry.counter)
            name, _, applies_to = entry.label.partition(f" {LIMIT_PLACEHOLDER} on ")
            resets_in_s = max(entry.expires_at - now, 0.0)
            windows.append(
                QuotaWindow(
                    key,
                    name,
                    applies_to,
                    entry.dimension.value,
                    reading.used,
                    reading.limit,
                    resets_in_s,
                    resets_at=entry.expires_at,
                )
            )
        return windows

    async def check_client(self, client_id: str, hits: int = 1, scope: str = "client") -> ClientDecision:
        """The gateway's question for one request: within the client's requests per minute and token budgets?"""
        now = self._clock()
        entries = self.clients.check(client_id, hits, now, scope)
        decision = await self.counters.reserve(entries, "", 0, now)
        rpm = decision.readings[0]
        if decision.granted:
            remaining = None if rpm.limit is None else max(rpm.limit - rpm.used, 0)
            return ClientDecision(True, rpm.limit, remaining, rpm.wait_s)
        wait, label = _denial(entries, decision.readings)
        blocking = next((e, r) for e, r in zip(entries, decision.readings, strict=True) if r.blocks(e.amount))
        name = blocking[0].counter.split("|")[2]
        remaining = None if rpm.limit is None else max(rpm.limit - rpm.used, 0)
        return ClientDecision(
            False, rpm.limit, remaining, rpm.wait_s, wait, label, limit_name=name, denied_limit=blocking[1].limit
        )

    async def query_usage(self, query: UsageQuery) -> list[UsageTotal]:
        return await self.usage.query(query)

    async def recent_attempts(self, limit: int) -> list[UsageRecord]:
        return await self.usage.recent(limit)
