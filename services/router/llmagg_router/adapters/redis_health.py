"""The HealthStore shared by every router replica through Redis/Valkey (ROUTER_HEALTH_STORE=redis).

The domain asks its health store on every attempt, synchronously, so nothing here waits for the network:
each replica keeps its own view in memory (a MemoryHealthStore) and shares *events* through Valkey:
- a cooldown of (provider, account, model): the key `<prefix>:health:["c",provider,account,model]`,
  expiring with the cooldown, and a message on the channel `<prefix>:health`;
- a circuit opening (or opening again after a failed probe): the key `<prefix>:health:["o",circuit]`,
  expiring when its open window ends, and a message likewise.
The other replicas apply a message as it arrives; a replica that starts, or reconnects after an outage,
reads the live keys. Durations travel as what is left (milliseconds, PTTL), never as timestamps, so the
replicas' clocks need not agree.

Not shared, on purpose:
- a circuit closing: an answer that was in flight when another replica opened the circuit must not
  close it everywhere. Each replica closes its own circuit after its own probe, so a half-open circuit
  gets at most one probe per replica;
- failures below the threshold (a count per replica: N replicas may each see threshold - 1);
- latency: a per-replica average that only orders candidates; sharing it would be a write per answer.

Writes go through a bounded queue to one background task (batched, one round trip per batch); when
the queue is full the event is dropped with a counted warning (this replica still honours it). With
Valkey unreachable each replica keeps its own view, the `redis` health name says so, and once Valkey
answers again the replica writes what it knows and reads what the others wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from llmagg.common.peers import Reachability
from llmagg_router.adapters.memory_health import MemoryHealthStore
from llmagg_router.domain.ports import CircuitState, HealthSnapshot

log = logging.getLogger(__name__)

UNREACHABLE = (RedisError, ConnectionError, TimeoutError, OSError)
_RETRY_S = 0.5  # between attempts to reach Valkey again
_IDLE_S = 1.0  # a quiet subscription is checked with a PING this often
# What only lengthens a cooldown or open window this replica knows by less is not shared again: many
# requests that see one 429 together make one message.
_SHARE_MIN_S = 0.5
_BATCH = 256
_WARN_EVERY_S = 10.0

# KEYS[1]: the event's key. ARGV: what is left of it in ms, the channel, the message. Only what outlasts
# the key already there is written and published: one 429 seen by many requests at once is one message.
_SHARE = """
if redis.call('PTTL', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""

Event = tuple[str, ...]  # ("c", provider, account, model) or ("o", circuit)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


class RedisHealthStore:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "llmagg",
        timeout_s: float = 0.5,
        queue_size: int = 10_000,
        failure_threshold: int = 3,
        open_for_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.local = MemoryHealthStore(failure_threshold=failure_threshold, open_for_s=open_for_s, clock=clock)
        self._url = url
        self._prefix = prefix
        self._channel = f"{prefix}:health"
        self._timeout_s = timeout_s
        self._queue_size = queue_size
        self._clock = clock
        self._replica = secrets.token_hex(8)  # its own messages come back to it: they are skipped
        self._client: redis.Redis | None = None
        self._script = None
        self._pubsub = None
        self._queue: asyncio.Queue[tuple[Event, float]] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._reachability = Reachability(log)
        self.healthy = self._reachability.healthy
        self.dropped = 0  # events the full queue could not take
        self._warned_at = -_WARN_EVERY_S
        self._closing = False

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and read the live cooldowns and circuits (within the timeout); unreachable, go on alone."""
        # No retries inside the client: a failed call (or a subscription the server dropped) must reach
        # this adapter, which reconnects and reads everything again.
        pool = redis.BlockingConnectionPool.from_url(
            self._url,
            max_connections=4,
            timeout=max(self._timeout_s * 4, 2.0),
            socket_timeout=self._timeout_s,
            socket_connect_timeout=self._timeout_s,
            health_check_interval=0,
            retry=Retry(NoBackoff(), 0),
        )
        self._client = redis.Redis(connection_pool=pool)
        self._script = self._client.register_script(_SHARE)
        self._queue = asyncio.Queue(self._queue_size)
        try:
            await self._connect()
        except UNREACHABLE as error:
            self._unreachable(error)
        self._listener = asyncio.create_task(self._listen())
        self._writer = asyncio.create_task(self._write())

    async def close(self, flush_timeout_s: float = 2.0) -> None:
        """Write what is queued (within the timeout), then stop."""
        if self._queue is not None and self._writer is not None and self._reachability.problem is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_timeout_s):
                    await self._queue.join()
        self._closing = True
        for task in (self._listener, self._writer):
            if task is not None:
                task.cancel()  # may be lost in a read timing out at that moment: then `_closing` ends the loop
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._listener = self._writer = None
        await self._drop_subscription()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
            await client.connection_pool.disconnect()

    # --- HealthStore: this replica's view, events shared -------------------------------------------
    def cool_down(self, provider: str, account: str, model: str, seconds: float) -> None:
        before = self.local.cooling_for(provider, account, model)
        self.local.cool_down(provider, account, model, seconds)
        after = self.local.cooling_for(provider, account, model)
        if after > (before and before + _SHARE_MIN_S):
            self._share(("c", provider, account, model), after)

    def cooling_for(self, provider: str, account: str, model: str) -> float:
        return self.local.cooling_for(provider, account, model)

    def record_failure(self, circuit: str) -> None:
        before = self.local.open_for(circuit)
        self.local.record_failure(circuit)
        after = self.local.open_for(circuit)
        if after > (before and before + _SHARE_MIN_S):
            self._share(("o", circuit), after)

    def record_success(self, circuit: str) -> None:
        self.local.record_success(circuit)

    def circuit_state(self, circuit: str) -> CircuitState:
        return self.local.circuit_state(circuit)

    def claim_probe(self, circuit: str) -> bool:
        return self.local.claim_probe(circuit)

    def record_latency(self, provider: str, model: str, latency_ms: float) -> None:
        self.local.record_latency(provider, model, latency_ms)

    def latency_ms(self, provider: str, model: str) -> float | None:
        return self.local.latency_ms(provider, model)

    def snapshot(self) -> HealthSnapshot:
        return self.local.snapshot()

    # --- sharing -----------------------------------------------------------------------------------
    def _share(self, event: Event, seconds: float) -> None:
        # While Valkey is unreachable nothing is queued: the view holds it, and reconnecting writes it.
        if self._queue is None or self._reachability.problem is not None:
            return
        try:
            self._queue.put_nowait((event, self._clock() + seconds))
        except asyncio.QueueFull:
            self.dropped += 1
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY_S:
                self._warned_at = now
                log.warning(
                    "health events for Valkey are queued faster than written: %d dropped so far "
                    "(this replica still honours them; the others do not learn of them)",
                    self.dropped,
                )

    def _key(self, event: Event) -> str:
        return f"{self._prefix}:health:{json.dumps(event, separators=(',', ':'))}"

    def _message(self, event: Event, ms: int) -> str:
        return json.dumps({"from": self._replica, "event": event, "ms": ms}, separators=(",", ":"))

    async def _send(self, events: list[tuple[Event, int]]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for event, ms in events:
                await self._script(
                    keys=[self._key(event)], args=[ms, self._channel, self._message(event, ms)], client=pipe
                )
            await pipe.execute()

    async def _write(self) -> None:
        while not self._closing:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                now = self._clock()
                events = [(event, int((until - now) * 1000)) for event, until in batch]
                events = [(event, ms) for event, ms in events if ms > 0]
                if events and self._reachability.problem is None:
                    await self._send(events)
            except UNREACHABLE as error:
                self._unreachable(error)
            except Exception:  # the writer must outlive any one bad batch
                log.exception("writing health events to Valkey failed")
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _apply(self, event: list, seconds: float) -> None:
        if seconds <= 0 or not all(isinstance(part, str) for part in event):
            return
        match event:
            case ["c", provider, account, model]:
                self.local.cool_down(provider, account, model, seconds)
            case ["o", circuit]:
                self.local.open_circuit(circuit, seconds)

    def _received(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            if message["from"] != self._replica:
                self._apply(message["event"], message["ms"] / 1000)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed health message on %s", self._channel)

    # --- connection and resync ----------------------------------------------------------------------
    def _unreachable(self, error: BaseException) -> None:
        self._reachability.failed(
            f"{type(error).__name__}: {error}",
            "Valkey is unreachable (%s): this replica keeps its own health view and shares it once Valkey answers",
        )

    async def _drop_subscription(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*UNREACHABLE):
                await pubsub.aclose()

    async def _connect(self) -> None:
        """Subscribe, then write this replica's view and read everyone's (what was missed meanwhile)."""
        await self._drop_subscription()
        # Idle pooled connections may lead to a server that went away (one in use fails on its own).
        await self._client.connection_pool.disconnect(inuse_connections=False)
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub = pubsub
        await pubsub.subscribe(self._channel)
        # From here on new events are queued again; the view written below holds everything before.
        was_down = self._reachability.answered()
        await self._write_view()
        await self._read_shared()
        if was_down:
            log.info("Valkey is reachable again: this replica's health view is shared again and holds the others'")

    async def _write_view(self) -> None:
        events: list[tuple[Event, int]] = [
            (("c", c.provider, c.account, c.model), int(c.remaining_s * 1000)) for c in self.local.snapshot().cooldowns
        ]
        events += [(("o", circuit), int(left * 1000)) for circuit, left in self.local.open_circuits().items()]
        events = [(event, ms) for event, ms in events if ms > 0]
        for start in range(0, len(events), _BATCH):
            await self._send(events[start : start + _BATCH])

    async def _read_shared(self) -> None:
        head = f"{self._prefix}:health:"
        keys: list[bytes] = []
        async for key in self._client.scan_iter(match=f"{_glob_escape(head)}*", count=_BATCH):
            keys.append(key)
            if len(keys) >= _BATCH:
                await self._read_keys(head, keys)
                keys = []
        if keys:
            await self._read_keys(head, keys)

    async def _read_keys(self, head: str, keys: list[bytes]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.pttl(key)
            left = await pipe.execute()
        for key, ms in zip(keys, left, strict=True):
            try:
                event = json.loads(key.decode()[len(head) :])
            except ValueError:
                continue
            if isinstance(event, list):
                self._apply(event, ms / 1000)

    async def _listen(self) -> None:
        """Apply what the other replicas publish; reconnect (and resync) whenever Valkey was lost."""
        while not self._closing:
            try:
                if self._pubsub is None or self._reachability.problem is not None:
                    await asyncio.sleep(_RETRY_S)
                    await self._connect()
                    continue
                message = await self._pubsub.get_message(timeout=_IDLE_S)
                if message is None:
                    await self._client.ping()  # a server that stopped answering, not only one that closed
                elif message["type"] == "message":
                    self._received(message["data"])
            except UNREACHABLE as error:
                self._unreachable(error)
            except Exception:  # the listener must outlive any one bad round
                log.exception("reading health events from Valkey failed")
                await asyncio.sleep(_RETRY_S)
