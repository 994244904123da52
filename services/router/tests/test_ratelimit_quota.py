"""The ratelimit adapter against a scripted RatelimitService on loopback (issue 16, item 2): a refusal is
not an outage (no unmetered routing), a refused batch costs no other settlement, and no number a
provider reports can break a settlement."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg.ratelimit.v1 import ratelimit_pb2_grpc
from llmagg_router.adapters.ratelimit_quota import RatelimitQuota
from llmagg_router.domain.ports import Observed, QuotaKey, Reservation, Usage

KEY = QuotaKey("p", "acct", "m")
LEDGER_MAX = MAX_TOKENS = 10**9  # what the ratelimit service takes


class ScriptedLedger(ratelimit_pb2_grpc.RatelimitServiceServicer):
    """Refuses what the real service refused before issue 16: token counts over 10**9, and a whole batch
    for one of them."""

    def __init__(self) -> None:
        self.reserve_status: grpc.StatusCode | None = None
        self.applied: list[pb.Settlement] = []
        self.calls = 0

    async def Reserve(self, request, context):
        if self.reserve_status is not None:
            await context.abort(self.reserve_status, "scripted")
        if request.estimated_tokens > LEDGER_MAX:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "`estimated_tokens` must be from 0 to 1000000000.")
        return pb.ReserveResponse(granted=True, reservation_id=request.reservation_id, requests=1)

    async def Settle(self, request, context):
        self.calls += 1
        for item in request.settlements:
            if item.estimated_tokens > LEDGER_MAX or item.prompt_tokens > LEDGER_MAX or not item.key.account:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad settlement")
        self.applied.extend(request.settlements)
        return pb.SettleResponse(settled=len(request.settlements))


@pytest.fixture
async def ledger():
    server = grpc.aio.server()
    scripted = ScriptedLedger()
    ratelimit_pb2_grpc.add_RatelimitServiceServicer_to_server(scripted, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    scripted.address = f"127.0.0.1:{port}"
    yield scripted
    await server.stop(None)


@pytest.fixture
async def quota(ledger):
    quota = RatelimitQuota(ledger.address, None, timeout_s=5)
    await quota.start()
    yield quota
    await quota.close()


@pytest.mark.parametrize("status", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE])
async def test_a_reservation_the_ledger_refuses_as_invalid_is_an_error_not_unmetered_routing(ledger, quota, status):
    ledger.reserve_status = status
    with pytest.raises(ServiceError) as caught:
        await quota.reserve(KEY, 10)
    assert (caught.value.kind, caught.value.code) == (ErrorKind.INTERNAL, "quota_refused")
    assert await quota.healthy()  # the ledger answered: it is not unreachable


async def test_an_unreachable_ledger_still_routes_unmetered(ledger, quota):
    ledger.reserve_status = grpc.StatusCode.UNAVAILABLE
    reservation = await quota.reserve(KEY, 10)
    assert reservation.granted and reservation.id == ""
    with pytest.raises(ConnectionError):
        await quota.healthy()


async def test_an_estimate_over_what_the_ledger_takes_is_clamped_not_refused(ledger, quota):
    reservation = await quota.reserve(KEY, 2**62)
    assert reservation.granted and reservation.id  # metered: the ledger named it
    assert reservation.estimated_tokens == MAX_TOKENS


async def test_numbers_no_settlement_can_carry_are_clamped_and_the_batch_lands(ledger, quota):
    granted = Reservation(KEY, granted=True, id="r1", estimated_tokens=2**62, client_id="a")
    await quota.settle(granted, Usage(10**20, -5), "ok")
    await quota.settle(Reservation(KEY, granted=True, id="r2", estimated_tokens=3, client_id="b"), Usage(1, 2), "ok")
    async with asyncio.timeout(10):
        await quota._queue.join()
    assert [(s.client_id, s.estimated_tokens, s.prompt_tokens, s.completion_tokens) for s in ledger.applied] == [
        ("a", MAX_TOKENS, MAX_TOKENS, 0),
        ("b", 3, 1, 2),
    ]


async def test_a_batch_refused_as_invalid_is_sent_again_item_by_item_so_one_bad_item_costs_no_other(ledger, quota):
    bad = Reservation(QuotaKey("p", "", "m"), granted=True, id="bad", client_id="hostile")
    await quota.settle(bad, Usage(1, 1), "ok")
    for n in range(3):
        await quota.settle(Reservation(KEY, granted=True, id=f"r{n}", client_id=f"c{n}"), Usage(1, 1), "ok")
    async with asyncio.timeout(10):
        await quota._queue.join()
    assert sorted(s.client_id for s in ledger.applied) == ["c0", "c1", "c2"]


async def test_the_model_asked_the_trace_and_the_time_to_first_token_reach_the_ledger(ledger, quota):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    streamed = Observed(80.0, 200, requested_model="auto", trace_id=trace_id, first_token_ms=12.5)
    await quota.settle(Reservation(KEY, granted=True, id="r1", client_id="a"), Usage(1, 2), "ok", streamed)
    failed = Observed(5.0, 500, requested_model="my-alias")
    await quota.settle(Reservation(KEY, granted=True, id="r2", client_id="a"), None, "server", failed)
    async with asyncio.timeout(10):
        await quota._queue.join()
    assert [(s.requested_model, s.trace_id, s.first_token_ms) for s in ledger.applied] == [
        ("auto", trace_id, 12.5),
        ("my-alias", "", 0.0),  # not traced, no first token: the proto's empty values
    ]
