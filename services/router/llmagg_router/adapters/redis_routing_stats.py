"""The meta-controller's stats shared by every router replica through Valkey/Redis
(ROUTER_ROUTING_STATS=redis), so that what one replica learns steers them all and survives restarts.

The request path only touches memory: `record` adds to this replica's view and to a batch of pending
deltas; one background task writes the batch every `sync_s` (HINCRBYFLOAT, one pipelined round trip)
and reads back the totals every replica wrote. Keys:
- `<prefix>:routing:profiles`: the set of task profiles seen;
- `<prefix>:routing:p:<profile>`: a hash of `<provider/model>\t<stat>` -> running sum;
- `<prefix>:routing:r:<request id>`: which profile and model served a request (for feedback), expiring.
With Valkey unreachable a replica keeps learning locally and writes its batch once Valkey answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Mapping

import redis.asyncio as redis
from redis.exceptions import RedisError

from llmagg_router.adapters.memory_routing_stats import REMEMBERED_REQUESTS, MemoryRoutingStats
from llmagg_router.domain.routing_stats import ArmStats, Served

log = logging.getLogger(__name__)
UNREACHABLE = (RedisError, ConnectionError, TimeoutError, OSError)
REQUEST_TTL_S = 86_400  # feedback on an answer older than a day is not taken


class RedisRoutingStats:
    def __init__(
        self,
        url: str,
        prefix: str = "llmagg",
        timeout_s: float = 0.5,
        sync_s: float = 1.0,
        remembered: int = REMEMBERED_REQUESTS,
    ) -> None:
        self._client = redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._prefix = f"{prefix}:routing"
        self._sync_s = sync_s
        self._remembered = remembered
        self._view = MemoryRoutingStats(remembered)  # the shared totals as last read, plus what was recorded since
        self._pending: dict[tuple[str, str], ArmStats] = {}
        self._pending_served: OrderedDict[str, Served] = OrderedDict()  # bounded like the view: oldest dropped
        self._task: asyncio.Task[None] | None = None

    def stats(self, profile: str) -> Mapping[str, ArmStats]:
        return self._view.stats(profile)

    def snapshot(self) -> dict[str, dict[str, ArmStats]]:
        return self._view.snapshot()

    def record(self, profile: str, arm: str, delta: ArmStats) -> None:
        self._view.record(profile, arm, delta)
        self._pending.setdefault((profile, arm), ArmStats()).add(delta)

    def remember(self, request_id: str, served: Served) -> None:
        self._view.remember(request_id, served)
        self._pending_served[request_id] = served
        self._pending_served.move_to_end(request_id)
        self._drop_oldest_pending()

    @property
    def pending_served(self) -> OrderedDict[str, Served]:
        """Served requests not yet written to Valkey (at most `remembered`, the newest)."""
        return self._pending_served

    def _drop_oldest_pending(self) -> None:
        while len(self._pending_served) > self._remembered:
            self._pending_served.popitem(last=False)

    async def served(self, request_id: str) -> Served | None:
        known = await self._view.served(request_id)
        if known is not None:
            return known
        try:
            raw = await self._client.get(f"{self._prefix}:r:{request_id}")
        except UNREACHABLE:
            return None
        if raw is None:
            return None
        return Served(*json.loads(raw))  # [profile, arm, client]; rows written before clients: [profile, arm]

    async def forget(self, request_id: str) -> bool:
        """Whoever deletes the Valkey row takes the feedback, so a replay on any replica finds nothing; a
        request not written yet (or with Valkey down) is taken by whoever drops it from this replica."""
        here = self._view.forget_now(request_id)
        if self._pending_served.pop(request_id, None) is not None:
            return here
        try:
            return bool(await self._client.delete(f"{self._prefix}:r:{request_id}"))
        except UNREACHABLE:
            return here

    async def start(self) -> None:
        with contextlib.suppress(*UNREACHABLE):
            await self.sync()  # what the replicas learned before this one started
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(*UNREACHABLE):
            await self.sync()  # what this replica learned last
        await self._client.aclose()

    async def sync(self) -> None:
        """Write the pending batch, then read every replica's totals into this replica's view."""
        batch, self._pending = self._pending, {}
        served, self._pending_served = self._pending_served, OrderedDict()
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for (profile, arm), delta in batch.items():
                    pipe.sadd(f"{self._prefix}:profiles", profile)
                    for name, value in delta.as_dict().items():
                        if value:
                            pipe.hincrbyfloat(f"{self._prefix}:p:{profile}", f"{arm}\t{name}", value)
                for request_id, where in served.items():
                    pipe.set(
                        f"{self._prefix}:r:{request_id}",
                        json.dumps([where.profile, where.arm, where.client]),
                        ex=REQUEST_TTL_S,
                    )
                await pipe.execute()
        except BaseException:
            for key, delta in batch.items():  # kept for the next sync
                self._pending.setdefault(key, ArmStats()).add(delta)
            served.update(self._pending_served)  # the newer ones last, so the oldest go first
            self._pending_served = served
            self._drop_oldest_pending()
            raise
        await self._read_totals()

    async def _read_totals(self) -> None:
        profiles = sorted(p.decode() for p in await self._client.smembers(f"{self._prefix}:profiles"))
        async with self._client.pipeline(transaction=False) as pipe:
            for profile in profiles:
                pipe.hgetall(f"{self._prefix}:p:{profile}")
            hashes = await pipe.execute()
        totals: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
        for profile, fields in zip(profiles, hashes, strict=True):
            for field, value in fields.items():
                arm, _, name = field.decode().rpartition("\t")
                totals[profile][arm][name] = float(value)
        view = MemoryRoutingStats(
            self._remembered, served=self._view.remembered
        )  # what this replica served stays findable
        for profile, arms in totals.items():
            for arm, values in arms.items():
                view.record(profile, arm, ArmStats.of(values))
        for (profile, arm), delta in self._pending.items():  # recorded while this sync ran
            view.record(profile, arm, delta)
        self._view = view

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._sync_s)
            try:
                await self.sync()
                if failing:
                    log.info("routing stats reach Valkey again")
                failing = False
            except UNREACHABLE as problem:
                if not failing:
                    log.warning("routing stats cannot reach Valkey (%s): learning locally until it answers", problem)
                failing = True
