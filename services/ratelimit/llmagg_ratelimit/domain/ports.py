"""What the ledger needs from storage: a counter store (memory or Redis/Valkey) and a usage store
(SQLite or PostgreSQL). `backends.py` picks them from settings; the domain never knows which it has."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from llmagg_ratelimit.domain.windows import Dimension


@dataclass(frozen=True)
class Entry:
    """One counter a reservation touches, and the limit it must stay within.

    `limit` is the configured limit (None: none configured); `limit_key` names a limit the store keeps
    itself (one learned from upstreams, or a provider's reported cap): the tightest of the two applies.
    An `optional` entry counts only while its limit key holds a limit (a learned window nobody has
    configured, a cap). A counter ends with its window (`expires_at`); a reported cap's counter
    (expires_at 0) ends with the cap.
    """

    counter: str
    dimension: Dimension
    amount: int
    limit: int | None
    limit_key: str | None
    expires_at: float
    label: str  # what a denial names: "rpd on openrouter/or-work"
    optional: bool = False

    @property
    def tied_to_cap(self) -> bool:
        return self.expires_at == 0


@dataclass(frozen=True)
class Reading:
    """A counter as the store found it: what is used, the limit in force (None: none), seconds until it resets."""

    used: int
    limit: int | None
    wait_s: float

    def blocks(self, amount: int) -> bool:
        """True when `amount` more (at least one: a zero-token check still needs room) would go over."""
        return self.limit is not None and self.used + max(amount, 1) > self.limit


@dataclass(frozen=True)
class StoreDecision:
    granted: bool
    readings: tuple[Reading, ...]  # one per entry: after the increment when granted, as found when not


@dataclass(frozen=True)
class LearnedLimit:
    key: str
    value: int
    expires_at: float


@dataclass(frozen=True)
class Cap:
    """A provider's word: at most `remaining` more until `until` (its counter restarts from zero)."""

    key: str
    counter: str
    remaining: int
    until: float


class CounterStore(Protocol):
    """Counters per window, learned limits and reservations, changed atomically across replicas."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def reserve(self, entries: Sequence[Entry], reservation_id: str, ttl_s: float, now: float) -> StoreDecision:
        """If every entry has room for its amount, add them all and remember the reservation (for `ttl_s`,
        unless the id is ""); otherwise change nothing."""
        ...

    async def settle(
        self, reservation_id: str, request_delta: int, token_delta: int, now: float, keep: bool = False
    ) -> bool:
        """Add the deltas to the reservation's request and token counters (whose windows have not ended)
        and forget it (unless `keep`: a lease's use); False when the store does not know the reservation
        (expired, returned or never made)."""
        ...

    async def first_time(self, token: str, ttl_s: float, now: float) -> bool:
        """True the first time `token` comes within `ttl_s` (a settled batch: its retries are skipped)."""
        ...

    async def release(self, reservation_id: str, now: float) -> bool:
        """Give back everything the reservation charged (whose windows have not ended) and forget it."""
        ...

    async def charge(self, entries: Sequence[Entry], now: float) -> None:
        """Add every entry's amount without checking any limit (what was used is used)."""
        ...

    async def peek(self, entries: Sequence[Entry], now: float) -> list[Reading]: ...

    async def learn(self, limits: Sequence[LearnedLimit], caps: Sequence[Cap], now: float) -> None: ...


@dataclass(frozen=True)
class UsageRecord:
    """One settled attempt: a row of the usage ledger."""

    ts: float
    client_id: str
    provider: str
    account: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    outcome: str
    cost_avoided_usd: float
    requested_model: str = ""  # what the client asked for ("auto", an alias); `model` served it
    trace_id: str = ""  # the attempt's trace when it was sampled ("": not traced)
    first_token_ms: float | None = None  # to the first content chunk of a streamed answer; None: not measured


DIMENSIONS = ("provider", "account", "model", "client_id", "outcome")
SERVED = "ok"  # the outcome of the one attempt that answered a request
BUCKETS = ("", "hour", "day", "month")


@dataclass(frozen=True)
class UsageQuery:
    start: float
    end: float
    bucket: str = ""  # one of BUCKETS
    group_by: tuple[str, ...] = ()  # of DIMENSIONS
    filters: tuple[tuple[str, str], ...] = ()  # (dimension, value)


@dataclass(frozen=True)
class UsageTotal:
    bucket_start: float
    dimensions: tuple[tuple[str, str], ...]
    requests: int  # requests answered: attempts whose outcome is SERVED (one per answered request)
    prompt_tokens: int
    completion_tokens: int
    latency_ms_avg: float
    cost_avoided_usd: float
    attempts: int  # every call to a provider, the fallbacks' included


class UsageStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, rows: Sequence[UsageRecord], batch_id: str = "") -> None:
        """Store `rows`; rows written under a `batch_id` are stored once, however often (and by whichever
        replica) that batch is written again."""
        ...

    async def query(self, query: UsageQuery) -> list[UsageTotal]: ...

    async def recent(self, limit: int) -> list[UsageRecord]:
        """The latest `limit` rows, newest first."""
        ...
