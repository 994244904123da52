"""The QuotaLedger of the suite: the ratelimit service over gRPC (ROUTER_QUOTA_LEDGER=ratelimit).

- `headroom`: one Headroom call per request for all its candidates;
- `reserve`: one Reserve call per attempt (the decision must be the shared one, so it is never cached);
- `settle`: queued (bounded; a full queue makes the attempt wait rather than lose a settlement) and
  sent in batches by one background task, so no request waits for its accounting; `close` sends what
  is queued before the router stops.
With the ratelimit service unreachable the router keeps routing: reservations are granted unmetered
(providers' 429s still steer through cooldowns), settlements wait in the queue for it to come back
(up to its bound), headroom is unknown, and the `ratelimit` health name says so.
The service token travels as gRPC metadata and is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence

import grpc

from llmagg.common.peers import Reachability, service_metadata
from llmagg.common.secrets import Secret
from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg.ratelimit.v1 import ratelimit_pb2_grpc
from llmagg_router.domain.ports import Headroom, Observed, QuotaKey, Reservation, Usage

log = logging.getLogger(__name__)

_BATCH = 256
_RETRY_S = 0.5


def _key(key: QuotaKey) -> pb.QuotaKey:
    return pb.QuotaKey(provider=key.provider, account=key.account, model=key.model)


class RatelimitQuota:
    def __init__(
        self,
        address: str,
        token: Secret | None,
        *,
        timeout_s: float = 1.0,
        queue_size: int = 10_000,
        flush_timeout_s: float = 5.0,
    ) -> None:
        self._address = address
        self._metadata = service_metadata(token)
        self._timeout_s = timeout_s
        self._flush_timeout_s = flush_timeout_s
        self._queue: asyncio.Queue[pb.Settlement] | None = None
        self._queue_size = queue_size
        self._channel: grpc.aio.Channel | None = None
        self._stub: ratelimit_pb2_grpc.RatelimitServiceStub | None = None
        self._sender: asyncio.Task[None] | None = None
        self._reachability = Reachability(log)
        self.healthy = self._reachability.healthy

    async def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._address)
        self._stub = ratelimit_pb2_grpc.RatelimitServiceStub(self._channel)
        self._queue = asyncio.Queue(self._queue_size)
        self._sender = asyncio.create_task(self._send_settlements())

    async def close(self) -> None:
        """Send every queued settlement (within the flush timeout), then stop."""
        if self._queue is not None and self._sender is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_timeout_s):
                    await self._queue.join()
            if self._queue.qsize():
                log.warning("%d settlements could not be sent before stopping", self._queue.qsize())
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
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
        request = pb.ReserveRequest(key=_key(key), estimated_tokens=estimated_tokens, client_id=client_id)
        try:
            reply = await self._stub.Reserve(request, metadata=self._metadata, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            self._unreachable(error)
            return Reservation(key, granted=True, estimated_tokens=estimated_tokens, client_id=client_id)
        self._reachable()
        return Reservation(
            key,
            granted=reply.granted,
            id=reply.reservation_id,
            retry_after_s=None if reply.granted else reply.retry_after_s,
            estimated_tokens=estimated_tokens,
            client_id=client_id,
        )

    async def settle(
        self, reservation: Reservation, usage: Usage | None, outcome: str, observed: Observed | None = None
    ) -> None:
        observed = observed or Observed()
        item = pb.Settlement(
            reservation_id=reservation.id,
            key=_key(reservation.key),
            client_id=reservation.client_id,
            estimated_tokens=reservation.estimated_tokens,
            usage_known=usage is not None,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            outcome=outcome,
            latency_ms=observed.latency_ms,
            upstream_status=observed.status,
            upstream_headers=dict(observed.headers),
            retry_after_s=observed.retry_after_s or 0.0,
            quota_id=observed.quota_id,
            ended_at=time.time(),
        )
        await self._queue.put(item)

    async def headroom(self, keys: Sequence[QuotaKey]) -> Mapping[QuotaKey, Headroom]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        try:
            reply = await self._stub.Headroom(
                pb.HeadroomRequest(keys=[_key(k) for k in unique]), metadata=self._metadata, timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as error:
            self._unreachable(error)
            return {}
        return {
            QuotaKey(item.key.provider, item.key.account, item.key.model): Headroom(
                item.remaining, item.retry_after_s or None
            )
            for item in reply.headroom
        }

    # --- the settlement queue --------------------------------------------------------------------
    async def _send_settlements(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < _BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            while True:
                try:
                    await self._stub.Settle(
                        pb.SettleRequest(settlements=batch), metadata=self._metadata, timeout=self._timeout_s * 5
                    )
                except grpc.aio.AioRpcError as error:
                    if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED):
                        log.error("settlements refused by the ratelimit service: %s", error.code().name)
                        break  # sending the same batch again would be refused again
                    self._unreachable(error)
                    await asyncio.sleep(_RETRY_S)
                    continue
                self._reachable()
                break
            for _ in batch:
                queue.task_done()
