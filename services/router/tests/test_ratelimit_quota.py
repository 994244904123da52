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
from llmagg_router.adapters.ratelimit_quota import _MADE_AT_ONCE, RatelimitQuota, _Settled, _settlements
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
        self.remaining: dict[str, float] = {}  # account -> the headroom the ledger reports (default 0.5)
        self.headroom_calls: list[list[str]] = []  # the accounts each Headroom call asked for
        self.settle_gate: asyncio.Event | None = None  # when set: each Settle call waits for it
        self.settle_arrived = asyncio.Event()

    async def Reserve(self, request, context):
        if self.reserve_status is not None:
            await context.abort(self.reserve_status, "scripted")
        if request.estimated_tokens > LEDGER_MAX:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "`estimated_tokens` must be from 0 to 1000000000.")
        remaining = self.remaining.get(request.key.account, 0.5)
        if not remaining:
            return pb.ReserveResponse(granted=False, retry_after_s=30.0, reason="rpd 3 on p/" + request.key.account)
        return pb.ReserveResponse(granted=True, reservation_id=request.reservation_id, requests=1, remaining=remaining)

    async def Headroom(self, request, context):
        self.headroom_calls.append([k.account for k in request.keys])
        return pb.HeadroomResponse(headroom=[self._room(k) for k in request.keys])

    def _room(self, key: pb.QuotaKey) -> pb.KeyHeadroom:
        remaining = self.remaining.get(key.account, 0.5)
        return pb.KeyHeadroom(key=key, remaining=remaining, retry_after_s=0.0 if remaining else 30.0)

    async def Settle(self, request, context):
        self.calls += 1
        self.settle_arrived.set()
        if self.settle_gate is not None:
            await self.settle_gate.wait()
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


async def test_a_settlement_that_cannot_be_made_is_dropped_and_the_sender_goes_on(ledger, quota, caplog):
    # Made a protobuf by the sender, not by the answer: a value no Settlement can carry must cost no other.
    odd = Observed(5.0, 200, headers={"x-ratelimit-remaining": 7})  # type: ignore[dict-item]
    await quota.settle(Reservation(KEY, granted=True, id="odd", client_id="odd"), Usage(1, 1), "ok", odd)
    await quota.settle(Reservation(KEY, granted=True, id="r1", client_id="c1"), Usage(1, 1), "ok")
    async with asyncio.timeout(10):
        await quota._queue.join()
    await quota.settle(Reservation(KEY, granted=True, id="r2", client_id="c2"), Usage(1, 1), "ok")
    async with asyncio.timeout(10):
        await quota._queue.join()
    assert [s.client_id for s in ledger.applied] == ["c1", "c2"]
    assert "could not be made: dropped" in caplog.text


async def test_a_large_batch_is_made_a_few_at_a_time_letting_requests_in_between():
    made_before_each_turn: list[int] = []
    settled = [
        _Settled(Reservation(KEY, granted=True, id=f"r{n}"), Usage(1, 1), "ok", Observed(), 0.0, False)
        for n in range(3 * _MADE_AT_ONCE)
    ]

    async def other_requests() -> None:  # what the loop would run between
        while True:
            made_before_each_turn.append(len(made_before_each_turn))
            await asyncio.sleep(0)

    turns = asyncio.ensure_future(other_requests())
    await asyncio.sleep(0)
    made = await _settlements(settled)
    turns.cancel()
    assert [s.reservation_id for s in made] == [f"r{n}" for n in range(3 * _MADE_AT_ONCE)]
    assert len(made_before_each_turn) == 1 + 3  # once before, then once per 16 made


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


ACCOUNTS = [QuotaKey("p", "a1", "m"), QuotaKey("p", "a2", "m")]


async def test_requests_rank_accounts_from_the_reserve_answers_without_a_headroom_call_each(ledger, quota):
    """Issue 19: the first request asks Headroom for keys never seen; in steady state (every key reserved
    within the last second) requests make no Headroom call, and the ranking follows what the last Reserve
    of each key said."""
    assert {k.account: h.remaining for k, h in (await quota.headroom(ACCOUNTS)).items()} == {"a1": 0.5, "a2": 0.5}
    assert ledger.headroom_calls == [["a1", "a2"]]
    ledger.remaining = {"a1": 0.9, "a2": 0.2}
    for _ in range(20):  # a request: rank its candidates, then reserve both (one failed over, say)
        await quota.headroom(ACCOUNTS)
        for key in ACCOUNTS:
            await quota.reserve(key, 10)
    room = await quota.headroom(ACCOUNTS)
    assert {k.account: h.remaining for k, h in room.items()} == {"a1": 0.9, "a2": 0.2}
    assert ledger.headroom_calls == [["a1", "a2"]]


async def test_a_key_not_reserved_lately_is_refreshed_in_the_background(ledger):
    clock = [1000.0]
    quota = RatelimitQuota(ledger.address, None, timeout_s=5, clock=lambda: clock[0])
    await quota.start()
    await quota.headroom(ACCOUNTS)
    ledger.remaining = {"a1": 0.0, "a2": 0.7}
    clock[0] += 1.5  # both keys are stale now
    stale = await quota.headroom(ACCOUNTS)
    assert {k.account: h.remaining for k, h in stale.items()} == {"a1": 0.5, "a2": 0.5}  # not waited for
    async with asyncio.timeout(10):
        await quota._refresh  # the background refresh
    assert ledger.headroom_calls == [["a1", "a2"], ["a1", "a2"]]
    clock[0] += 0.5
    fresh = await quota.headroom(ACCOUNTS)
    assert {k.account: (h.remaining, h.retry_after_s) for k, h in fresh.items()} == {
        "a1": (0.0, 29.5),  # exhausted: skipped for as long as the ledger said
        "a2": (0.7, None),
    }
    assert len(ledger.headroom_calls) == 2
    await quota.close()


async def test_a_key_whose_reserve_was_denied_ranks_last_until_headroom_says_how_long_it_is_exhausted(ledger):
    clock = [1000.0]
    quota = RatelimitQuota(ledger.address, None, timeout_s=5, clock=lambda: clock[0])
    await quota.start()
    await quota.headroom(ACCOUNTS)
    ledger.remaining = {"a1": 0.0}
    assert not (await quota.reserve(ACCOUNTS[0], 10)).granted
    # The denial was for this attempt's size: the key is ranked last, not skipped, and asked about again.
    room = await quota.headroom(ACCOUNTS)
    assert {k.account: (h.remaining > 0, h.remaining < 0.5) for k, h in room.items()} == {
        "a1": (True, True),
        "a2": (True, False),
    }
    async with asyncio.timeout(10):
        await quota._refresh
    assert ledger.headroom_calls == [["a1", "a2"], ["a1"]]
    room = await quota.headroom(ACCOUNTS)
    assert {k.account: (h.remaining, h.retry_after_s) for k, h in room.items()} == {
        "a1": (0.0, 30.0),
        "a2": (0.5, None),
    }
    await quota.close()


@pytest.fixture
async def settling_quota(ledger):
    quota = RatelimitQuota(ledger.address, None, timeout_s=5, settle_before_answer=True)
    await quota.start()
    yield quota
    await quota.close()


async def test_a_served_answer_settles_before_it_returns_and_answers_ending_together_share_one_call(
    ledger, settling_quota
):
    """With settle_before_answer the answer waits for the ledger: when `settle` returns, the row is applied
    (a router killed right after answering loses nothing); concurrent answers go in one Settle call."""
    quota = settling_quota
    await quota.settle(Reservation(KEY, granted=True, id="r0", client_id="c0"), Usage(1, 1), "ok")
    assert [s.client_id for s in ledger.applied] == ["c0"] and ledger.calls == 1
    ledger.settle_gate = asyncio.Event()  # the next call waits until let through
    ledger.settle_arrived.clear()
    first = asyncio.ensure_future(quota.settle(Reservation(KEY, granted=True, id="r1", client_id="c1"), None, "ok"))
    await asyncio.wait_for(ledger.settle_arrived.wait(), 5)
    together = [
        asyncio.ensure_future(quota.settle(Reservation(KEY, granted=True, id=f"r{n}", client_id=f"c{n}"), None, "ok"))
        for n in (2, 3)
    ]
    await asyncio.sleep(0)
    assert not first.done() and not any(t.done() for t in together)
    ledger.settle_gate.set()
    await asyncio.wait_for(asyncio.gather(first, *together), 5)
    assert [s.client_id for s in ledger.applied] == ["c0", "c1", "c2", "c3"]
    assert ledger.calls == 3  # c0; c1; c2 and c3 gathered while c1's call was under way


async def test_a_failed_attempt_does_not_wait_for_its_settlement(ledger, settling_quota):
    quota = settling_quota
    ledger.settle_gate = asyncio.Event()
    await asyncio.wait_for(quota.settle(Reservation(KEY, granted=True, id="r1", client_id="c1"), None, "server"), 1)
    assert ledger.applied == []
    ledger.settle_gate.set()
    async with asyncio.timeout(10):
        await quota._queue.join()
    assert [s.outcome for s in ledger.applied] == ["server"]


async def test_by_default_an_answer_does_not_wait_for_the_ledger(ledger):
    quota = RatelimitQuota(ledger.address, None, timeout_s=5)
    await quota.start()
    try:
        ledger.settle_gate = asyncio.Event()
        await asyncio.wait_for(quota.settle(Reservation(KEY, granted=True, id="r1", client_id="c1"), None, "ok"), 1)
        assert ledger.applied == []
        ledger.settle_gate.set()
    finally:
        await quota.close()
    assert [s.client_id for s in ledger.applied] == ["c1"]


async def test_an_answer_waiting_for_its_settlement_goes_on_when_the_router_stops(ledger):
    quota = RatelimitQuota(ledger.address, None, timeout_s=30, flush_timeout_s=0.2, settle_before_answer=True)
    await quota.start()
    ledger.settle_gate = asyncio.Event()  # the ledger never answers
    waiting = asyncio.ensure_future(quota.settle(Reservation(KEY, granted=True, id="r1", client_id="c1"), None, "ok"))
    await asyncio.wait_for(ledger.settle_arrived.wait(), 5)
    await quota.close()
    await asyncio.wait_for(waiting, 1)
    assert quota._acks == {}
    ledger.settle_gate.set()
