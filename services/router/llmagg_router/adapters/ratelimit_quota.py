"""The QuotaLedger of the suite: the ratelimit service over gRPC (ROUTER_QUOTA_LEDGER=ratelimit).

- `headroom`: answered here, from what the ledger last said of each key: every Reserve answer carries
  what is left of the key's tightest window, and a Headroom call (batched, in the background, one at a
  time) refreshes keys not reserved within a second; only keys never seen before wait for one. A stale
  ranking only changes the order of the attempts: each is still reserved, and the ledger decides. An
  exhausted key is skipped only until the wait the ledger gave;
- `reserve`: a Reserve call asks for a lease of several requests of the key (as many as the last lease
  of the key served, doubled when it was spent early: up to 64); the ledger grants at most a share of
  what each limit has left, charged at once, for at most a second and never past a window's end, and
  the attempts after it spend the lease here without a call (one call per key at a time: attempts that
  find one under way wait for its lease). What a lease has left when it expires, runs short or a newer
  one replaces it goes back at once. So the decision stays the shared one: nothing is spent that the
  ledger did not grant;
- `settle`: queued (bounded; a full queue makes the attempt wait rather than lose a settlement) and
  sent in batches (what gathers within 100 ms) by one background task, so no request waits for its
  accounting; `close` sends what is queued before the router stops. With `settle_before_answer` a served
  answer's settlement is sent at once and its answer waits for the ledger's acknowledgement (at most the
  call timeout: an unreachable ledger delays no answer longer), so a router killed right after answering
  loses no usage row; answers finishing together share one call (the next gathers while one is under way).
With the ratelimit service unreachable the router keeps routing: reservations are granted unmetered
(providers' 429s still steer through cooldowns), settlements wait in the queue for it to come back
(up to its bound), headroom is unknown, and the `ratelimit` health name says so. A ledger that answers
but refuses a call as invalid is not unreachable: a refused reservation fails the request (never routed
unmetered), a refused batch is sent again item by item (one bad settlement costs no other). Token counts
are clamped to what the ledger takes, whatever a request asked or a provider reported.
The service token travels as gRPC metadata and is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import grpc

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.grpc_client import service_channel
from llmagg.common.peers import Reachability, service_metadata
from llmagg.common.secrets import Secret
from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg.ratelimit.v1 import ratelimit_pb2_grpc
from llmagg_router.domain.ports import Headroom, Observed, QuotaKey, Reservation, Usage

log = logging.getLogger(__name__)

_BATCH = 256
_RETRY_S = 0.5
# Settlements no answer waits for wait this long for company before they are sent: one Settle call per
# batch instead of one per request (the reservation's estimate holds meanwhile).
_LINGER_S = 0.1
_MAX_LEASE = 64
_LEASE_IDS = 10_000
_WAITS = 8  # calls of other attempts one attempt waits for before it asks itself
_LEASE_SIZES = 65_536
_SWEEP_S = 0.25  # how often expired leases are looked for (and their rest given back)
_FRESH_S = 1.0  # a key's headroom older than this is asked again (in the background)
_ROOM_KEYS = 65_536
_MADE_AT_ONCE = 16  # settlements made into protobufs between two looks at the requests waiting
_LEAST = 1e-6  # the headroom of a key whose Reserve found nothing left: last, yet not skipped
MAX_TOKENS = 10**9  # the most tokens the ledger takes in one count (ratelimit's converters)
# The ledger answered, and said the call itself is wrong: sending it again changes nothing.
_REFUSALS = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE})


def _tokens(count: int) -> int:
    return min(max(count, 0), MAX_TOKENS)


@dataclass(frozen=True)
class _Room:
    """What the ledger last said of a key's headroom, and when (monotonic)."""

    remaining: float
    retry_after_s: float
    at: float
    stale: bool = False  # to be asked again at the next chance

    def fresh(self, now: float) -> bool:
        return not self.stale and now - self.at < _FRESH_S

    def now(self, now: float) -> Headroom | None:
        """As it stands now; None once an exhausted key's wait is over (its Reserve decides again)."""
        if self.remaining > 0:
            return Headroom(self.remaining)
        left = self.retry_after_s - (now - self.at)
        return Headroom(0.0, left) if left > 0 else None


@dataclass
class _Lease:
    """Requests and tokens the ledger reserved for this router to spend until `expires` (monotonic)."""

    id: str
    key: QuotaKey
    requests: int
    tokens: int
    expires: float

    def __post_init__(self) -> None:
        self.granted = self.requests

    def covers(self, estimated_tokens: int, now: float) -> bool:
        return now < self.expires and self.requests >= 1 and self.tokens >= estimated_tokens


def _key(key: QuotaKey) -> pb.QuotaKey:
    return pb.QuotaKey(provider=key.provider, account=key.account, model=key.model)


class _Settled(NamedTuple):
    """An attempt's end as the router saw it, queued for the ledger."""

    reservation: Reservation
    usage: Usage | None
    outcome: str
    observed: Observed
    ended_at: float  # wall clock
    leased: bool  # spent from a lease (the ledger counts only the difference from its estimate)


async def _settlements(items: list[_Settled | pb.LeaseReturn]) -> list[pb.Settlement]:
    """The batch's settlements as the ledger takes them; one that cannot be made is logged and dropped (the
    sender goes on: the others keep their accounting). Made a few at a time: a batch of hundreds made at once
    would hold up the requests arriving meanwhile for a millisecond or more."""
    made = []
    for n, item in enumerate(items, 1):
        if n % _MADE_AT_ONCE == 0:
            await asyncio.sleep(0)
        if isinstance(item, _Settled):
            try:
                made.append(_settlement(item))
            except Exception:
                key = item.reservation.key
                log.exception(
                    "a settlement of %s/%s/%s could not be made: dropped", key.provider, key.account, key.model
                )
    return made


def _settlement(settled: _Settled) -> pb.Settlement:
    reservation, usage, observed = settled.reservation, settled.usage, settled.observed
    return pb.Settlement(
        reservation_id=reservation.id,
        key=_key(reservation.key),
        client_id=reservation.client_id,
        estimated_tokens=_tokens(reservation.estimated_tokens),
        usage_known=usage is not None,
        prompt_tokens=_tokens(usage.prompt_tokens) if usage else 0,
        completion_tokens=_tokens(usage.completion_tokens) if usage else 0,
        outcome=settled.outcome,
        latency_ms=observed.latency_ms,
        upstream_status=observed.status,
        upstream_headers=dict(observed.headers),
        retry_after_s=observed.retry_after_s or 0.0,
        quota_id=observed.quota_id,
        ended_at=settled.ended_at,
        leased=settled.leased,
        requested_model=observed.requested_model,
        trace_id=observed.trace_id,
        first_token_ms=observed.first_token_ms or 0.0,
    )


class RatelimitQuota:
    def __init__(
        self,
        address: str,
        token: Secret | None,
        *,
        timeout_s: float = 1.0,
        queue_size: int = 10_000,
        flush_timeout_s: float = 5.0,
        settle_before_answer: bool = False,
        clock: Callable[[], float] = time.monotonic,  # when headroom was learned, and how old it is
    ) -> None:
        self._clock = clock
        self._address = address
        self._metadata = service_metadata(token)
        self._timeout_s = timeout_s
        self._flush_timeout_s = flush_timeout_s
        self._settle_before_answer = settle_before_answer
        # Queued settlements an answer waits for, by id() of the queued item (alive until its batch is done).
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._urgent = asyncio.Event()  # one of them is queued: the batch goes without lingering
        self._queue: asyncio.Queue[_Settled | pb.LeaseReturn] | None = None
        self._queue_size = queue_size
        self._channel: grpc.aio.Channel | None = None
        self._stub: ratelimit_pb2_grpc.RatelimitServiceStub | None = None
        self._sender: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._leases: dict[QuotaKey, _Lease] = {}  # the one being spent, per key
        self._lease_ids: dict[str, None] = {}  # recent leases (oldest first): their uses settle as leased
        self._asking: dict[QuotaKey, asyncio.Future[Reservation]] = {}  # the Reserve call under way, per key
        self._lease_sizes: dict[QuotaKey, int] = {}  # what the next lease of a key asks for
        self._returns: list[pb.LeaseReturn] = []  # waiting for room in the queue (it is bounded)
        self._room: dict[QuotaKey, _Room] = {}  # the ledger's last word on each key's headroom
        self._refresh: asyncio.Task[None] | None = None  # the background Headroom call under way
        self._reachability = Reachability(log)
        self.healthy = self._reachability.healthy

    async def start(self) -> None:
        self._channel = service_channel(self._address)
        self._stub = ratelimit_pb2_grpc.RatelimitServiceStub(self._channel)
        self._queue = asyncio.Queue(self._queue_size)
        self._sender = asyncio.create_task(self._send_settlements())
        self._sweeper = asyncio.create_task(self._sweep_leases())

    async def close(self) -> None:
        """Give back what leases have left, send every queued settlement (within the flush timeout), then stop."""
        if self._refresh is not None:
            self._refresh.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for lease in list(self._leases.values()):
            self._end(lease)
        if self._queue is not None and self._sender is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_timeout_s):
                    while self._returns:  # the queue is full: make room as it drains
                        self._queue_returns()
                        await asyncio.sleep(_SWEEP_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_timeout_s):
                    await self._queue.join()
            if self._queue.qsize() or self._returns:
                log.warning(
                    "%d settlements could not be sent before stopping", self._queue.qsize() + len(self._returns)
                )
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            for acknowledged in self._acks.values():  # the answers waiting go on (what was not sent is logged)
                if not acknowledged.done():
                    acknowledged.set_result(None)
            self._acks.clear()
        if self._channel is not None:
            await self._channel.close()

    def _unreachable(self, error: grpc.aio.AioRpcError) -> None:
        self._reachability.failed(
            f"ratelimit service at {self._address}: {error.code().name}",
            "quota ledger unreachable, routing unmetered: %s",
        )

    def _reachable(self) -> None:
        self._reachability.answered("quota ledger reachable again")

    # --- QuotaLedger ---------------------------------------------------------------------------------
    async def reserve(self, key: QuotaKey, estimated_tokens: int, client_id: str = "") -> Reservation:
        for _ in range(_WAITS):
            spent = self._spend(key, estimated_tokens, client_id)
            if spent is not None:
                return spent
            asking = self._asking.get(key)
            if asking is None:
                break
            with contextlib.suppress(Exception):  # one call per key at a time: its lease may cover this attempt
                await asyncio.shield(asking)
        # Shielded: an attempt cancelled meanwhile must not lose a lease the ledger has already charged.
        task = asyncio.ensure_future(self._ask(key, estimated_tokens, client_id))
        if key not in self._asking:
            self._asking[key] = task
            task.add_done_callback(lambda _: self._asking.pop(key, None))
        return await asyncio.shield(task)

    async def _ask(self, key: QuotaKey, estimated_tokens: int, client_id: str) -> Reservation:
        """Reserve this attempt, asking for a lease of the key's next size (registered with this attempt
        already spent from it)."""
        now, asked_at = time.monotonic(), self._clock()
        estimated_tokens = _tokens(estimated_tokens)
        request = pb.ReserveRequest(
            key=_key(key),
            estimated_tokens=estimated_tokens,
            client_id=client_id,
            lease_requests=self._lease_sizes.get(key, 2),
            reservation_id=secrets.token_hex(12),
        )
        try:
            reply = await self._stub.Reserve(request, metadata=self._metadata, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            if error.code() in _REFUSALS:
                self._reachable()
                log.error("the ratelimit service refused a reservation: %s %s", error.code().name, error.details())
                raise ServiceError(
                    ErrorKind.INTERNAL,
                    "The quota ledger refused to meter this request, so it was sent to no provider.",
                    code="quota_refused",
                ) from None
            self._unreachable(error)
            if error.code() is not grpc.StatusCode.UNAVAILABLE:
                # The ledger may have reserved it all the same (a deadline): whatever it did, give it back.
                self._give_back(pb.LeaseReturn(reservation_id=request.reservation_id, unclaimed=True))
            return Reservation(key, granted=True, estimated_tokens=estimated_tokens, client_id=client_id)
        self._reachable()
        if reply.granted and reply.remaining > 0:
            self._learn(key, reply.remaining, 0.0, asked_at)
        else:  # the wait is the ledger's for this attempt's size: rank the key last, ask Headroom what is left
            self._learn(key, _LEAST, 0.0, asked_at, stale=True)
        if reply.granted and reply.requests > 1:
            current = self._leases.get(key)
            if current is not None:
                self._end(current)
            lease = _Lease(reply.reservation_id, key, reply.requests, reply.tokens, now + reply.valid_for_s)
            self._leases[key] = lease
            self._lease_ids[lease.id] = None
            if len(self._lease_ids) > _LEASE_IDS:
                del self._lease_ids[next(iter(self._lease_ids))]
            return self._take(lease, estimated_tokens, client_id)
        return Reservation(
            key,
            granted=reply.granted,
            id=reply.reservation_id,
            retry_after_s=None if reply.granted else reply.retry_after_s,
            estimated_tokens=estimated_tokens,
            client_id=client_id,
        )

    # --- leases ------------------------------------------------------------------------------------
    def _spend(self, key: QuotaKey, estimated_tokens: int, client_id: str) -> Reservation | None:
        """This attempt spent from the key's lease, or None when it has none that covers it (one that
        has expired or run short ends here)."""
        lease = self._leases.get(key)
        if lease is None:
            return None
        if not lease.covers(estimated_tokens, time.monotonic()):
            self._end(lease)
            return None
        return self._take(lease, estimated_tokens, client_id)

    def _take(self, lease: _Lease, estimated_tokens: int, client_id: str) -> Reservation:
        lease.requests -= 1
        lease.tokens -= estimated_tokens
        return Reservation(lease.key, granted=True, id=lease.id, estimated_tokens=estimated_tokens, client_id=client_id)

    def _end(self, lease: _Lease) -> None:
        """Spend no more of it; size the key's next lease by what this one served (doubled when it ran
        out before it expired); give its rest back now. Uses still under way settle against the ledger's
        record while it is there, and charge only what they used beyond their estimate once it is gone."""
        if self._leases.get(lease.key) is lease:
            del self._leases[lease.key]
        used = lease.granted - lease.requests
        spent_early = lease.requests == 0 and time.monotonic() < lease.expires
        if len(self._lease_sizes) >= _LEASE_SIZES:
            self._lease_sizes.clear()  # keys come from clients too (pass-through model ids): stay bounded
        self._lease_sizes[lease.key] = min(_MAX_LEASE, max(2, used * 2 if spent_early else used))
        if lease.requests or lease.tokens:
            self._give_back(pb.LeaseReturn(reservation_id=lease.id, requests=lease.requests, tokens=lease.tokens))

    def _give_back(self, item: pb.LeaseReturn) -> None:
        if len(self._returns) >= self._queue_size:  # the ledger has been away long: the oldest stays charged
            log.warning(
                "lease returns waiting for the ratelimit service are over %d: dropping the oldest", self._queue_size
            )
            self._returns.pop(0)
        self._returns.append(item)
        self._queue_returns()

    def _queue_returns(self) -> None:
        while self._returns and not self._queue.full():
            self._queue.put_nowait(self._returns.pop(0))

    async def _sweep_leases(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_S)
            now = time.monotonic()
            for lease in [lease for lease in self._leases.values() if now >= lease.expires]:
                self._end(lease)
            self._queue_returns()

    async def settle(
        self, reservation: Reservation, usage: Usage | None, outcome: str, observed: Observed | None = None
    ) -> None:
        # Queued as it is, made a Settlement by the sender with its batch: not on the answer's path.
        item = _Settled(
            reservation, usage, outcome, observed or Observed(), time.time(), reservation.id in self._lease_ids
        )
        if not (self._settle_before_answer and outcome == "ok"):
            await self._queue.put(item)
            return
        acknowledged = asyncio.get_running_loop().create_future()
        self._acks[id(item)] = acknowledged
        await self._queue.put(item)
        self._urgent.set()
        with contextlib.suppress(TimeoutError):  # still queued: it is sent when the ledger is back
            await asyncio.wait_for(asyncio.shield(acknowledged), self._timeout_s)

    async def headroom(self, keys: Sequence[QuotaKey]) -> Mapping[QuotaKey, Headroom]:
        now = self._clock()
        unseen = [key for key in dict.fromkeys(keys) if key not in self._room]
        if unseen:
            await self._ask_headroom(unseen)
        stale = [key for key in dict.fromkeys(keys) if key in self._room and not self._room[key].fresh(now)]
        if stale and self._refresh is None:
            self._refresh = asyncio.create_task(self._ask_headroom(stale))
            self._refresh.add_done_callback(self._refreshed)
        known = {key: self._room[key].now(now) for key in keys if key in self._room}
        return {key: room for key, room in known.items() if room is not None}

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._refresh = None
        if not task.cancelled():
            task.exception()  # _ask_headroom logs its own failures

    def _learn(self, key: QuotaKey, remaining: float, retry_after_s: float, at: float, stale: bool = False) -> None:
        known = self._room.get(key)
        if known is not None and known.at > at:
            return  # a Headroom answer older than the last Reserve answer
        if known is None and len(self._room) >= _ROOM_KEYS:
            self._room.clear()  # keys come from clients too (pass-through model ids): stay bounded
        self._room[key] = _Room(remaining, retry_after_s, at, stale)

    async def _ask_headroom(self, keys: list[QuotaKey]) -> None:
        """One Headroom call for `keys`; what it says is learned (nothing when the ledger does not answer)."""
        now = self._clock()
        try:
            reply = await self._stub.Headroom(
                pb.HeadroomRequest(keys=[_key(k) for k in keys]), metadata=self._metadata, timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _REFUSALS:
                log.error("the ratelimit service refused a headroom query: %s", error.details())
            else:
                self._unreachable(error)
            return
        for item in reply.headroom:
            key = QuotaKey(item.key.provider, item.key.account, item.key.model)
            self._learn(key, item.remaining, item.retry_after_s, now)

    # --- the settlement queue --------------------------------------------------------------------
    async def _send_settlements(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            if not self._acks:
                with contextlib.suppress(TimeoutError):  # gather company, unless an answer is waiting
                    await asyncio.wait_for(self._urgent.wait(), _LINGER_S)
            self._urgent.clear()
            while len(batch) < _BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            if not await self._send(batch) and len(batch) > 1:
                # One item the ledger refuses must not cost the others their accounting: each alone.
                for item in batch:
                    await self._send([item])
            for item in batch:
                queue.task_done()
                acknowledged = self._acks.pop(id(item), None)
                if acknowledged is not None and not acknowledged.done():
                    acknowledged.set_result(None)

    async def _send(self, items: list[_Settled | pb.LeaseReturn]) -> bool:
        """One Settle call for `items`, retried while the ledger is unreachable; False when it refused them as
        invalid."""
        request = pb.SettleRequest(
            settlements=await _settlements(items),
            returns=[item for item in items if isinstance(item, pb.LeaseReturn)],
            batch_id=secrets.token_hex(12),  # the same on a retry: the ledger applies it once
        )
        while True:
            try:
                reply = await self._stub.Settle(request, metadata=self._metadata, timeout=self._timeout_s * 5)
            except grpc.aio.AioRpcError as error:
                if error.code() in _REFUSALS or error.code() is grpc.StatusCode.PERMISSION_DENIED:
                    log.error(
                        "%d settlements refused by the ratelimit service: %s %s",
                        len(items),
                        error.code().name,
                        error.details(),
                    )
                    # Sending the same batch again would be refused again; another token would not help.
                    return error.code() not in _REFUSALS
                self._unreachable(error)
                await asyncio.sleep(_RETRY_S)
                continue
            self._reachable()
            for refused in reply.refused:
                log.error("the ratelimit service refused %s[%d]: %s", refused.list, refused.index, refused.reason)
            return True
