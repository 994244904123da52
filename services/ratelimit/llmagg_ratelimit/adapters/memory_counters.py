"""The CounterStore of one replica: counters, learned limits and reservations in this process's memory.

Every change is made without an await in between, so on the service's event loop a reservation's
check and its increments are one atomic step, as the Redis script is on Redis. Expired entries are
dropped as time passes (a heap of expiry times), so memory follows what is live, not what was seen.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from llmagg_ratelimit.domain.ports import Cap, Entry, LearnedLimit, Reading, StoreDecision
from llmagg_ratelimit.domain.windows import Dimension


class MemoryCounters:
    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}  # counter or limit key -> (value, expires_at)
        self._reservations: dict[str, tuple[tuple[tuple[str, Dimension], ...], float]] = {}
        self._expiries: list[tuple[float, str, str]] = []  # (when, kind "v" or "r", key)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # --- the arithmetic, synchronous (also used by the Redis store's local fallback) -------------------
    def _expire(self, now: float) -> None:
        heap = self._expiries
        while heap and heap[0][0] <= now:
            _, kind, key = heapq.heappop(heap)
            table = self._values if kind == "v" else self._reservations
            current = table.get(key)
            if current is not None and current[1] <= now:
                del table[key]

    def _get(self, key: str | None) -> tuple[int, float] | None:
        return self._values.get(key) if key else None

    def _set(self, key: str, value: int, expires_at: float) -> None:
        current = self._values.get(key)
        self._values[key] = (value, expires_at)
        if current is None or current[1] != expires_at:
            heapq.heappush(self._expiries, (expires_at, "v", key))

    def read(self, entry: Entry, now: float) -> Reading:
        limit, wait = entry.limit, entry.expires_at - now
        learned = self._get(entry.limit_key)
        if learned is not None and (limit is None or learned[0] < limit):
            limit = learned[0]
            if entry.tied_to_cap:
                wait = learned[1] - now
        if entry.optional and learned is None:
            return Reading(0, None, 0.0)  # no learned limit or cap in force: nothing to count against
        current = self._values.get(entry.counter)
        return Reading(current[0] if current else 0, limit, max(wait, 0.0))

    def add(self, entry: Entry, amount: int, now: float) -> int:
        """Add to the entry's counter (a cap's counter only while the cap is in force); the new value."""
        expires_at = entry.expires_at
        if entry.optional:
            limit = self._get(entry.limit_key)
            if limit is None:
                return 0
            if entry.tied_to_cap:
                expires_at = limit[1]
        current = self._values.get(entry.counter)
        value = (current[0] if current else 0) + amount
        self._set(entry.counter, value, current[1] if current else expires_at)
        return value

    def reserve_now(self, entries: Sequence[Entry], reservation_id: str, ttl_s: float, now: float) -> StoreDecision:
        self._expire(now)
        readings = [self.read(entry, now) for entry in entries]
        if any(reading.blocks(entry.amount) for entry, reading in zip(entries, readings, strict=True)):
            return StoreDecision(False, tuple(readings))
        after = []
        for entry, reading in zip(entries, readings, strict=True):
            used = self.add(entry, entry.amount, now) if entry.amount else reading.used
            after.append(Reading(used, reading.limit, reading.wait_s))
        if reservation_id:
            touched = tuple(
                (e.counter, e.dimension, e.amount)
                for e in entries
                if e.amount and (not e.optional or self._get(e.limit_key) is not None)
            )
            self._reservations[reservation_id] = (touched, now + ttl_s)
            heapq.heappush(self._expiries, (now + ttl_s, "r", reservation_id))
        return StoreDecision(True, tuple(after))

    def settle_now(
        self,
        reservation_id: str,
        request_delta: int,
        token_delta: int,
        now: float,
        keep: bool = False,
        release: bool = False,
    ) -> bool:
        self._expire(now)
        record = (self._reservations.get if keep else self._reservations.pop)(reservation_id, None)
        if record is None:
            return False
        for counter, dimension, amount in record[0]:
            if release:
                delta = -amount
            else:
                delta = request_delta if dimension is Dimension.REQUESTS else token_delta
            current = self._values.get(counter)
            if delta and current is not None:  # a window that has ended is not made again
                # Never below zero: a cap learned meanwhile restarted this counter from what the provider said.
                self._values[counter] = (max(current[0] + delta, 0), current[1])
        return True

    def charge_now(self, entries: Sequence[Entry], now: float) -> None:
        self._expire(now)
        for entry in entries:
            if entry.amount:
                self.add(entry, entry.amount, now)

    def learn_now(self, limits: Sequence[LearnedLimit], caps: Sequence[Cap], now: float) -> None:
        self._expire(now)
        for limit in limits:
            self._set(limit.key, limit.value, limit.expires_at)
        for cap in caps:
            self._set(cap.key, cap.remaining, cap.until)
            self._set(cap.counter, 0, cap.until)

    def counters(self) -> dict[str, tuple[int, float]]:
        """Every live counter (not limits): key -> (value, expires_at)."""
        return {k: v for k, v in self._values.items() if not k.startswith(("L|", "C|", "B|"))}

    def clear_counters(self) -> None:
        """Forget every counter, and the reservations that charged them (their later settlements find none)."""
        for key in list(self.counters()):
            del self._values[key]
        self._reservations.clear()

    # --- CounterStore --------------------------------------------------------------------------------
    async def reserve(self, entries: Sequence[Entry], reservation_id: str, ttl_s: float, now: float) -> StoreDecision:
        return self.reserve_now(entries, reservation_id, ttl_s, now)

    async def settle(
        self, reservation_id: str, request_delta: int, token_delta: int, now: float, keep: bool = False
    ) -> bool:
        return self.settle_now(reservation_id, request_delta, token_delta, now, keep)

    def first_time_now(self, token: str, ttl_s: float, now: float) -> bool:
        self._expire(now)
        if f"B|{token}" in self._values:
            return False
        self._set(f"B|{token}", 1, now + ttl_s)
        return True

    async def first_time(self, token: str, ttl_s: float, now: float) -> bool:
        return self.first_time_now(token, ttl_s, now)

    async def release(self, reservation_id: str, now: float) -> bool:
        return self.settle_now(reservation_id, 0, 0, now, release=True)

    async def charge(self, entries: Sequence[Entry], now: float) -> None:
        self.charge_now(entries, now)

    async def peek(self, entries: Sequence[Entry], now: float) -> list[Reading]:
        self._expire(now)
        return [self.read(entry, now) for entry in entries]

    async def learn(self, limits: Sequence[LearnedLimit], caps: Sequence[Cap], now: float) -> None:
        self.learn_now(limits, caps, now)

    def __len__(self) -> int:
        return len(self._values) + len(self._reservations)
