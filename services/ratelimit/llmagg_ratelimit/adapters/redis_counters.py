"""The CounterStore shared by every replica: Redis or Valkey, each operation one server-side Lua script.

A reservation's check of every counter and its increments run as one script, so N replicas on one
server never grant past a limit together. Scripts are sent once and called by hash (EVALSHA; the
client loads them again after a server restart). One primary, not Redis Cluster: the settle script
touches the counters its reservation names.

Keys: `<prefix>:<counter>` per window (expiring with it, plus a minute), `<prefix>:<L|C...>` for learned
limits and caps, `<prefix>:r:<id>` per open reservation (a hash: counter -> dimension).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from llmagg_ratelimit.domain.ports import Cap, Entry, LearnedLimit, Reading, StoreDecision
from llmagg_ratelimit.domain.windows import Dimension

GRACE_MS = 60_000  # a counter outlives its window by this much (clocks of replicas differ a little)

# KEYS[1]: the reservation's record; then per entry i: KEYS[2i] its counter, KEYS[2i+1] its limit key.
# ARGV: mode ("check": reserve, "charge": add without checking, "peek": read only), now_ms, ttl_ms, n,
# then per entry: dimension ("r"/"t"), amount, configured limit (-1: none), its limit key ("0": none,
# "1": one, "2": one, and the entry counts only while it holds a limit), window end in ms (0: ends with
# its limit key, a cap).
# Returns {granted, used[], limits[], waits_ms[]}.
_SCRIPT = """
local mode, now, ttl, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local used, limits, waits, amounts, ends = {}, {}, {}, {}, {}
local blocked = false
for i = 1, n do
  local b = 4 + (i - 1) * 5
  local amount, limit, ends_at = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 5])
  local wait = ends_at - now
  local counted = true
  if ARGV[b + 4] ~= '0' then
    local learned = redis.call('GET', KEYS[2 * i + 1])
    if learned then
      learned = tonumber(learned)
      if limit < 0 or learned < limit then
        limit = learned
        if ends_at == 0 then wait = redis.call('PTTL', KEYS[2 * i + 1]) end
      end
    elseif ARGV[b + 4] == '2' then
      counted = false
    end
  end
  local current = 0
  if counted then current = tonumber(redis.call('GET', KEYS[2 * i]) or '0') end
  if not counted then limit = -1; wait = 0 end
  used[i], limits[i], waits[i], amounts[i] = current, limit, math.max(wait, 0), amount
  if not counted then amounts[i] = 0 end
  if ends_at == 0 and counted then ends[i] = -1 else ends[i] = ends_at end
  if mode == 'check' and limit >= 0 and current + math.max(amount, 1) > limit then blocked = true end
end
if blocked or mode == 'peek' then return {0, used, limits, waits} end
local record = {}
for i = 1, n do
  if amounts[i] ~= 0 then
    used[i] = redis.call('INCRBY', KEYS[2 * i], amounts[i])
    if ends[i] > 0 then
      redis.call('PEXPIREAT', KEYS[2 * i], ends[i] + GRACE_MS)
    else
      redis.call('PEXPIRE', KEYS[2 * i], math.max(redis.call('PTTL', KEYS[2 * i + 1]), 1))
    end
    table.insert(record, KEYS[2 * i])
    table.insert(record, ARGV[4 + (i - 1) * 5 + 1] .. ':' .. amounts[i])
  end
end
if mode == 'check' and ttl > 0 and #record > 0 then
  redis.call('HSET', KEYS[1], unpack(record))
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, used, limits, waits}
""".replace("GRACE_MS", str(GRACE_MS))

# KEYS[1]: the reservation's record (counter -> "<r|t>:<amount charged>"). ARGV: request delta, token
# delta, "1" to keep the record (a lease's use), "1" to give back all it charged instead of the deltas.
# Counters of windows that have ended are not made again; none goes below zero.
_SETTLE = """
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return 0 end
if ARGV[3] ~= '1' then redis.call('DEL', KEYS[1]) end
for i = 1, #record, 2 do
  local delta = tonumber(ARGV[2])
  if string.sub(record[i + 1], 1, 1) == 'r' then delta = tonumber(ARGV[1]) end
  if ARGV[4] == '1' then delta = -(tonumber(string.sub(record[i + 1], 3)) or 0) end
  if delta ~= 0 and redis.call('EXISTS', record[i]) == 1 then
    if redis.call('INCRBY', record[i], delta) < 0 then redis.call('SET', record[i], 0, 'KEEPTTL') end
  end
end
return 1
"""

_CODES = {Dimension.REQUESTS: "r", Dimension.TOKENS: "t"}


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000)


class RedisCounters:
    def __init__(self, url: str, prefix: str = "llmagg", timeout_s: float = 0.5, connections: int = 32) -> None:
        self._url = url
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._connections = connections
        self._client: redis.Redis | None = None
        self._script = None
        self._settle = None

    async def start(self) -> None:
        # A bounded pool: calls beyond it wait for a connection (a few seconds at most) rather than
        # opening hundreds at once; each call still times out on a server that does not answer.
        # A connection the server closed (it restarted) fails on send: that call is tried once more on a
        # new connection. A timeout is not retried: the script may have run.
        pool = redis.BlockingConnectionPool.from_url(
            self._url,
            max_connections=self._connections,
            timeout=max(self._timeout_s * 4, 2.0),
            socket_timeout=self._timeout_s,
            socket_connect_timeout=self._timeout_s,
            health_check_interval=0,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        self._client = redis.Redis(connection_pool=pool)
        self._script = self._client.register_script(_SCRIPT)
        self._settle = self._client.register_script(_SETTLE)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            await self._client.connection_pool.disconnect()

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def reconnect(self) -> None:
        """Drop every pooled connection (after an outage they lead to the server that went away)."""
        await self._client.connection_pool.disconnect()

    def _key(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    async def _run(self, mode: str, entries: Sequence[Entry], reservation_id: str, ttl_s: float, now: float):
        keys = [self._key(f"r:{reservation_id}")]
        args: list = [mode, _ms(now), _ms(ttl_s), len(entries)]
        for entry in entries:
            keys += [self._key(entry.counter), self._key(entry.limit_key or entry.counter)]
            args += [
                _CODES[entry.dimension],
                entry.amount,
                -1 if entry.limit is None else entry.limit,
                (2 if entry.optional else 1) if entry.limit_key else 0,
                _ms(entry.expires_at),
            ]
        granted, used, limits, waits = await self._script(keys=keys, args=args)
        readings = [
            Reading(int(u), None if int(limit) < 0 else int(limit), int(w) / 1000)
            for u, limit, w in zip(used, limits, waits, strict=True)
        ]
        return bool(granted), readings

    async def reserve(self, entries: Sequence[Entry], reservation_id: str, ttl_s: float, now: float) -> StoreDecision:
        granted, readings = await self._run("check", entries, reservation_id, ttl_s if reservation_id else 0, now)
        return StoreDecision(granted, tuple(readings))

    async def settle(
        self, reservation_id: str, request_delta: int, token_delta: int, now: float, keep: bool = False
    ) -> bool:
        found = await self._settle(
            keys=[self._key(f"r:{reservation_id}")], args=[request_delta, token_delta, "1" if keep else "0", "0"]
        )
        return bool(found)

    async def first_time(self, token: str, ttl_s: float, now: float) -> bool:
        return bool(await self._client.set(self._key(f"b:{token}"), 1, nx=True, px=max(_ms(ttl_s), 1)))

    async def release(self, reservation_id: str, now: float) -> bool:
        found = await self._settle(keys=[self._key(f"r:{reservation_id}")], args=[0, 0, "0", "1"])
        return bool(found)

    async def charge(self, entries: Sequence[Entry], now: float) -> None:
        await self._run("charge", entries, "", 0, now)

    async def peek(self, entries: Sequence[Entry], now: float) -> list[Reading]:
        return (await self._run("peek", entries, "", 0, now))[1]

    async def learn(self, limits: Sequence[LearnedLimit], caps: Sequence[Cap], now: float) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            for limit in limits:
                pipe.set(self._key(limit.key), limit.value, pxat=_ms(limit.expires_at))
            for cap in caps:
                pipe.set(self._key(cap.key), cap.remaining, pxat=_ms(cap.until))
                pipe.set(self._key(cap.counter), 0, pxat=_ms(cap.until))
            await pipe.execute()

    async def add_counters(self, counters: dict[str, tuple[int, float]]) -> None:
        """Add values to counters whose windows have not ended (what a replica granted alone)."""
        async with self._client.pipeline(transaction=True) as pipe:
            for counter, (value, expires_at) in counters.items():
                if value:
                    pipe.incrby(self._key(counter), value)
                    pipe.pexpireat(self._key(counter), _ms(expires_at) + GRACE_MS)
            await pipe.execute()
