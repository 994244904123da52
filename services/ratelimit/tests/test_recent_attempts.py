"""ListRecentAttempts (`GET /v1/admin/usage/recent`): the ledger's latest rows, newest first, for admin keys only."""

from __future__ import annotations

import pytest

from llmagg.common.caller_auth import calling_peer
from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg_ratelimit.servicer import MAX_RECENT, RatelimitServicer

from .helpers import NOON


class Context:
    def __init__(self, scope: str) -> None:
        self._metadata = (("x-llmagg-client-id", "k1"), ("x-llmagg-client-scope", scope))

    def invocation_metadata(self):
        return self._metadata


def settlement(client: str, outcome: str, ended_at: float) -> pb.Settlement:
    key = pb.QuotaKey(provider="permodel", account="c1", model="m1")
    return pb.Settlement(
        key=key, client_id=client, outcome=outcome, usage_known=True, prompt_tokens=3, completion_tokens=4,
        latency_ms=12.5, ended_at=ended_at,
    )  # fmt: skip


async def test_the_latest_attempts_newest_first(ledger):
    servicer = RatelimitServicer(ledger)
    token = calling_peer.set("router")  # what the caller auth interceptor sets for the router's token
    try:
        batch = [settlement("a", "ok", NOON), settlement("b", "rate_limited", NOON + 1)]
        await servicer.Settle(pb.SettleRequest(settlements=batch), None)
    finally:
        calling_peer.reset(token)
    answer = await servicer.ListRecentAttempts(pb.ListRecentAttemptsRequest(), Context("admin"))
    assert answer.object == "list"
    assert [(a.client_id, a.outcome, a.provider, a.account, a.model, a.at) for a in answer.data] == [
        ("b", "rate_limited", "permodel", "c1", "m1", "2026-03-10T12:00:31Z"),
        ("a", "ok", "permodel", "c1", "m1", "2026-03-10T12:00:30Z"),
    ]
    assert (answer.data[1].prompt_tokens, answer.data[1].completion_tokens, answer.data[1].latency_ms) == (3, 4, 12.5)
    one = await servicer.ListRecentAttempts(pb.ListRecentAttemptsRequest(limit=1), Context("admin"))
    assert [a.client_id for a in one.data] == ["b"]
    # Neither asked for a model by name, was traced nor timed to its first token: all empty.
    assert [(a.requested_model, a.trace_id, a.first_token_ms) for a in answer.data] == [("", "", 0.0)] * 2


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_the_model_asked_the_trace_and_the_time_to_first_token_are_listed(ledger):
    servicer = RatelimitServicer(ledger)
    item = settlement("a", "ok", NOON)
    item.requested_model, item.trace_id, item.first_token_ms = "auto", TRACE, 42.25
    token = calling_peer.set("router")
    try:
        answer = await servicer.Settle(pb.SettleRequest(settlements=[item]), None)
    finally:
        calling_peer.reset(token)
    assert (answer.settled, list(answer.refused)) == (1, [])
    [listed] = (await servicer.ListRecentAttempts(pb.ListRecentAttemptsRequest(), Context("admin"))).data
    assert (listed.requested_model, listed.trace_id, listed.first_token_ms, listed.model) == (
        "auto",
        TRACE,
        42.25,
        "m1",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("trace_id", "not-a-trace"), ("trace_id", TRACE.upper()), ("first_token_ms", float("nan")),
     ("requested_model", "m" * 257)],
)  # fmt: skip
async def test_a_settlement_with_a_bad_new_field_is_refused_naming_it(ledger, field, value):
    item = settlement("a", "ok", NOON)
    setattr(item, field, value)
    token = calling_peer.set("router")
    try:
        answer = await RatelimitServicer(ledger).Settle(
            pb.SettleRequest(settlements=[item, settlement("b", "ok", NOON)]), None
        )
    finally:
        calling_peer.reset(token)
    assert answer.settled == 1
    [refused] = answer.refused
    assert (refused.list, refused.index) == ("settlements", 0) and field in refused.reason


@pytest.mark.parametrize("limit", [-1, MAX_RECENT + 1])
async def test_a_limit_out_of_range_is_refused(ledger, limit):
    with pytest.raises(ServiceError) as refused:
        await RatelimitServicer(ledger).ListRecentAttempts(pb.ListRecentAttemptsRequest(limit=limit), Context("admin"))
    assert refused.value.kind == ErrorKind.INVALID_ARGUMENT


async def test_a_client_key_is_refused_even_past_the_gateway(ledger):
    with pytest.raises(ServiceError) as refused:
        await RatelimitServicer(ledger).ListRecentAttempts(pb.ListRecentAttemptsRequest(), Context("client"))
    assert refused.value.kind == ErrorKind.PERMISSION_DENIED
