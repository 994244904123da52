"""The servicer's checks of what the router sends (issue 16, item 2): each settlement of a batch is checked
on its own, so one bad one is refused and reported while the rest are applied; absurd token counts are
clamped to what the ledger takes rather than refused."""

from __future__ import annotations

import pytest

from llmagg.common.caller_auth import calling_peer
from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg_ratelimit.domain.ports import UsageQuery
from llmagg_ratelimit.servicer import RatelimitServicer

from .helpers import NOON

MAX_TOKENS = 10**9


class Context:
    def invocation_metadata(self):
        return ()


@pytest.fixture(autouse=True)
def as_the_router():
    """The caller auth interceptor found the router's token (it sets `calling_peer` for the handler)."""
    token = calling_peer.set("router")
    yield
    calling_peer.reset(token)


@pytest.fixture
def servicer(ledger):
    return RatelimitServicer(ledger)


def settlement(client: str, **fields) -> pb.Settlement:
    fields.setdefault("key", pb.QuotaKey(provider="permodel", account="c1", model="m1"))
    fields.setdefault("ended_at", NOON)
    return pb.Settlement(client_id=client, outcome="ok", usage_known=True, **fields)


async def rows(ledger) -> list[tuple[str, int, int]]:
    totals = await ledger.query_usage(UsageQuery(NOON - 60, NOON + 60, "", ("client_id",), ()))
    return sorted((dict(t.dimensions)["client_id"], t.requests, t.prompt_tokens) for t in totals)


async def test_one_bad_settlement_is_refused_alone_and_the_rest_of_the_batch_is_applied(servicer, ledger):
    batch = pb.SettleRequest(
        settlements=[
            settlement("a", prompt_tokens=3),
            settlement("hostile", prompt_tokens=-5),
            settlement("b", prompt_tokens=4),
            settlement("no-key", key=pb.QuotaKey(provider="permodel")),
            settlement("c", prompt_tokens=5),
            settlement("when", ended_at=float("nan")),
        ],
        returns=[pb.LeaseReturn(reservation_id="gone", requests=1), pb.LeaseReturn(requests=1)],
        batch_id="b1",
    )
    reply = await servicer.Settle(batch, Context())
    assert reply.settled == 3
    assert [(r.list, r.index, r.reason) for r in reply.refused] == [
        ("settlements", 1, "`prompt_tokens` must be at least 0."),
        ("settlements", 3, "`settlements.key` needs a provider and an account."),
        ("settlements", 5, "`ended_at` must be a finite number."),
        ("returns", 1, "A lease return needs the lease's reservation_id."),
    ]
    assert await rows(ledger) == [("a", 1, 3), ("b", 1, 4), ("c", 1, 5)]


async def test_token_counts_over_what_the_ledger_takes_are_clamped_not_refused(servicer, ledger):
    huge = settlement("big", estimated_tokens=2**62, prompt_tokens=2**62, completion_tokens=2**63 - 1)
    reply = await servicer.Settle(pb.SettleRequest(settlements=[huge, settlement("small", prompt_tokens=1)]), Context())
    assert (reply.settled, list(reply.refused)) == (2, [])
    assert await rows(ledger) == [("big", 1, MAX_TOKENS), ("small", 1, 1)]


async def test_a_reservation_with_an_absurd_estimate_is_clamped_and_decided_on_its_own(servicer):
    key = pb.QuotaKey(provider="permodel", account="c1", model="m1")
    reply = await servicer.Reserve(pb.ReserveRequest(key=key, estimated_tokens=2**62), Context())
    assert not reply.granted and reply.reason == "tpd 1000000 on permodel/c1/m1"  # denied by a limit, not refused
    open_key = pb.QuotaKey(provider="unknown", account="x", model="m")
    assert (await servicer.Reserve(pb.ReserveRequest(key=open_key, estimated_tokens=2**62), Context())).granted


async def test_a_negative_estimate_is_refused(servicer):
    key = pb.QuotaKey(provider="permodel", account="c1", model="m1")
    with pytest.raises(ServiceError) as caught:
        await servicer.Reserve(pb.ReserveRequest(key=key, estimated_tokens=-1), Context())
    assert (caught.value.kind, caught.value.param) == (ErrorKind.INVALID_ARGUMENT, "estimated_tokens")


async def test_a_settlement_that_fails_to_apply_costs_the_rest_of_its_batch_nothing(clock):
    from llmagg_ratelimit.adapters.memory_counters import MemoryCounters

    from .helpers import make_ledger

    class Flaky(MemoryCounters):
        async def settle(self, reservation_id, *args, **kwargs):
            if reservation_id == "poison":
                raise RuntimeError("a store that fails on this one")
            return await super().settle(reservation_id, *args, **kwargs)

    ledger = make_ledger(clock, counters=Flaky())
    batch = pb.SettleRequest(
        settlements=[
            settlement("a", prompt_tokens=3),
            settlement("hostile", prompt_tokens=4, reservation_id="poison"),
            settlement("b", prompt_tokens=5),
        ],
        batch_id="b2",
    )
    reply = await RatelimitServicer(ledger).Settle(batch, Context())
    assert reply.settled == 2
    assert [(r.list, r.index) for r in reply.refused] == [("settlements", 1)]
    assert await rows(ledger) == [("a", 1, 3), ("b", 1, 5)]
