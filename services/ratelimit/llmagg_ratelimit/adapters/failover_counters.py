"""Redis/Valkey with a conservative local fallback: decisions continue while Redis is unreachable.

Healthy, every call goes to Redis, and this replica remembers what it last saw of each counter (used
and limit). When Redis fails (refused, timed out) the replica decides alone, in memory, on
`share` of what it last saw left of each limit (share 1/N for N replicas keeps them together within
it), logs it once and reports it through `healthy()` (the `redis` health name). The readiness probe
tries Redis again; once it answers, what was granted alone (and settlements Redis missed) is added
to Redis, and Redis decides again: no restart needed.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmagg_ratelimit.adapters.memory_counters import MemoryCounters
from llmagg_ratelimit.adapters.redis_counters import RedisCounters
from llmagg_ratelimit.domain.ports import Cap, Entry, LearnedLimit, Reading, StoreDecision

log = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
LOCAL_PREFIX = "local-"
_SEEN_LIMIT = 100_000  # counters remembered for the fallback (oldest forgotten first)
_PENDING_LIMIT = 100_000  # settlements kept for Redis while it is down


class FailoverCounters:
    def __init__(self, remote: RedisCounters, share: float = 0.5) -> None:
        self.remote = remote
        self.local = MemoryCounters()
        self.share = share
        self.degraded: str | None = None  # why Redis is not used, None while it is
        # counter -> (used, limit, when its window or cap ends), as Redis last said
        self._seen: OrderedDict[str, tuple[int, int | None, float]] = OrderedDict()
        # Settlements Redis has not had: (reservation id, request delta, token delta, keep, release).
        self._pending: list[tuple[str, int, int, bool, bool]] = []

    async def start(self) -> None:
        await self.remote.start()
        await self.healthy_or_recover()

    async def close(self) -> None:
        await self.remote.close()

    # --- health and recovery ---------------------------------------------------------------------
    def _fall_back(self, error: Exception) -> None:
        if self.degraded is None:
            log.warning(
                "Redis is unreachable (%s): deciding locally on %.0f%% of what was left of each limit",
                type(error).__name__,
                self.share * 100,
            )
        self.degraded = f"{type(error).__name__}: {error}"

    async def healthy_or_recover(self) -> bool:
        """The readiness probe: ping Redis; when it answers after an outage, hand it what was done locally."""
        try:
            if self.degraded is not None:
                await self.remote.reconnect()
            await self.remote.ping()
            await self._flush()
        except UNREACHABLE as error:
            self._fall_back(error)
            raise ConnectionError(f"Redis unreachable, deciding locally: {self.degraded}") from None
        if self.degraded is not None:
            log.info("Redis is reachable again: what was granted locally is in Redis, Redis decides again")
            self.degraded = None
        return True

    async def _flush(self) -> None:
        """Move local counters and missed settlements into Redis (then forget them here)."""
        counters = self.local.counters()
        if counters:
            await self.remote.add_counters(counters)
            self.local.clear_counters()
        while self._pending:
            reservation_id, request_delta, token_delta, keep, release = self._pending[0]
            if release:
                await self.remote.release(reservation_id, 0.0)
            else:
                await self.remote.settle(reservation_id, request_delta, token_delta, 0.0, keep)
            self._pending.pop(0)

    # --- what was seen, for the fallback ----------------------------------------------------------
    def _remember(self, entries: Sequence[Entry], readings: Sequence[Reading], now: float) -> None:
        seen = self._seen
        for entry, reading in zip(entries, readings, strict=True):
            ends = entry.expires_at if not entry.tied_to_cap else now + reading.wait_s
            seen[entry.counter] = (reading.used, reading.limit, ends)
            seen.move_to_end(entry.counter)
        while len(seen) > _SEEN_LIMIT:
            seen.popitem(last=False)

    def _local_entries(self, entries: Sequence[Entry], now: float) -> list[Entry]:
        """Each limit as this replica may spend it alone: its share of what it last saw left (of a
        learned limit or a cap too, until the window or cap it saw ends)."""
        local = []
        for entry in entries:
            used, limit, ends = self._seen.get(entry.counter, (0, entry.limit, entry.expires_at))
            if entry.optional and (limit is None or ends <= now):
                continue  # no learned limit or cap seen in force: nothing to count against
            if limit is None:
                limit = entry.limit
            if limit is not None:
                limit = math.floor(self.share * max(limit - used, 0))
            local.append(replace(entry, limit=limit, limit_key=None, expires_at=ends))
        return local

    # --- CounterStore ------------------------------------------------------------------------------
    async def reserve(self, entries: Sequence[Entry], reservation_id: str, ttl_s: float, now: float) -> StoreDecision:
        if self.degraded is None:
            try:
                decision = await self.remote.reserve(entries, reservation_id, ttl_s, now)
            except UNREACHABLE as error:
                self._fall_back(error)
            else:
                self._remember(entries, decision.readings, now)
                return decision
        local_id = LOCAL_PREFIX + reservation_id if reservation_id else ""
        local = self._local_entries(entries, now)
        decision = self.local.reserve_now(local, local_id, ttl_s, now)
        # The domain reads the decision entry by entry: entries left out locally read as free.
        by_counter = dict(zip((e.counter for e in local), decision.readings, strict=True))
        free = Reading(0, None, 0.0)
        return StoreDecision(decision.granted, tuple(by_counter.get(e.counter, free) for e in entries))

    async def settle(
        self, reservation_id: str, request_delta: int, token_delta: int, now: float, keep: bool = False
    ) -> bool:
        # A reservation granted locally is settled locally: its counters go to Redis with the rest.
        if self.local.settle_now(LOCAL_PREFIX + reservation_id, request_delta, token_delta, now, keep):
            return True
        if self.degraded is None:
            try:
                return await self.remote.settle(reservation_id, request_delta, token_delta, now, keep)
            except UNREACHABLE as error:
                self._fall_back(error)
        if len(self._pending) < _PENDING_LIMIT:
            self._pending.append((reservation_id, request_delta, token_delta, keep, False))
        return True  # Redis gets it when it is back

    async def first_time(self, token: str, ttl_s: float, now: float) -> bool:
        if self.degraded is None:
            try:
                return await self.remote.first_time(token, ttl_s, now)
            except UNREACHABLE as error:
                self._fall_back(error)
        return self.local.first_time_now(token, ttl_s, now)

    async def release(self, reservation_id: str, now: float) -> bool:
        if self.local.settle_now(LOCAL_PREFIX + reservation_id, 0, 0, now, release=True):
            return True
        if self.degraded is None:
            try:
                return await self.remote.release(reservation_id, now)
            except UNREACHABLE as error:
                self._fall_back(error)
        if len(self._pending) < _PENDING_LIMIT:
            self._pending.append((reservation_id, 0, 0, False, True))
        return True

    async def charge(self, entries: Sequence[Entry], now: float) -> None:
        if self.degraded is None:
            try:
                await self.remote.charge(entries, now)
                return
            except UNREACHABLE as error:
                self._fall_back(error)
        self.local.charge_now([replace(e, limit_key=None, expires_at=e.expires_at or now + 60) for e in entries], now)

    async def peek(self, entries: Sequence[Entry], now: float) -> list[Reading]:
        if self.degraded is None:
            try:
                readings = await self.remote.peek(entries, now)
            except UNREACHABLE as error:
                self._fall_back(error)
            else:
                self._remember(entries, readings, now)
                return readings
        local = {e.counter: self.local.read(e, now) for e in self._local_entries(entries, now)}
        return [local.get(entry.counter, Reading(0, None, 0.0)) for entry in entries]

    async def learn(self, limits: Sequence[LearnedLimit], caps: Sequence[Cap], now: float) -> None:
        if self.degraded is None:
            try:
                await self.remote.learn(limits, caps, now)
                return
            except UNREACHABLE as error:
                self._fall_back(error)
        # What an upstream says during the outage still steers this replica (and the next 429 again).


__all__ = ["UNREACHABLE", "FailoverCounters", "RedisError"]
