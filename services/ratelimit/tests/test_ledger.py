"""Reserve, settle and headroom on the memory store: windows, scopes, the tightest limit, expiry."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmagg_ratelimit.adapters.memory_counters import MemoryCounters
from llmagg_ratelimit.domain.ledger import LeaseReturn, Settlement
from llmagg_ratelimit.domain.limits import QuotaKey, count_limits
from llmagg_ratelimit.domain.ports import UsageQuery

from .helpers import NOON, Clock, key, make_ledger


async def grants(ledger, k, n, tokens=0):
    return sum([(await ledger.reserve(k, tokens)).granted for _ in range(n)])


async def test_a_shared_pool_is_one_quota_for_every_model_of_an_account(ledger):
    assert await grants(ledger, key(model="a:free"), 15) == 15
    assert await grants(ledger, key(model="b:free"), 10) == 5  # 20 per minute across both models
    assert await grants(ledger, key(account="acct-2", model="a:free"), 20) == 20  # another account: its own pool


async def test_a_denial_names_the_limit_and_waits_for_the_end_of_its_window(ledger):
    await grants(ledger, key(), 20)
    denied = await ledger.reserve(key(), 0)
    assert not denied.granted and denied.reservation_id == ""
    assert denied.retry_after_s == pytest.approx(30)  # 12:00:30 -> the minute ends at 12:01:00
    assert denied.reason == "rpm 20 on pool/acct-1"


async def test_the_day_limit_holds_across_minutes_and_resets_at_midnight(ledger, clock):
    granted = 0
    for minute in range(4):
        clock.now = NOON + 60 * minute
        granted += await grants(ledger, key(), 20)
    assert granted == 50
    denied = await ledger.reserve(key(), 0)
    assert denied.reason == "rpd 50 on pool/acct-1"
    clock.now = NOON - 12 * 3600 - 30 + 86400  # the next UTC midnight
    assert (await ledger.reserve(key(), 0)).granted


async def test_a_day_in_the_providers_zone_resets_at_its_midnight(ledger, clock):
    k = key("pacific", "p1", "x")
    assert await grants(ledger, k, 5) == 3
    # 12:00:30 UTC is 05:00:30 in Los Angeles: its day ends 19 hours later, not at UTC midnight.
    assert (await ledger.reserve(k, 0)).retry_after_s == pytest.approx(19 * 3600 - 30)
    clock.now = NOON + 12 * 3600  # past UTC midnight, still the same Pacific day
    assert not (await ledger.reserve(k, 0)).granted
    clock.now = NOON + 19 * 3600
    assert (await ledger.reserve(k, 0)).granted


async def test_tokens_per_minute_count_the_estimate_until_the_truth_is_settled(ledger):
    k = key("permodel", "c1", "m1")
    first = await ledger.reserve(k, 50000)
    assert first.granted
    assert not (await ledger.reserve(k, 20000)).granted  # 70k > 60k TPM
    await ledger.settle([Settlement(k, first.reservation_id, estimated_tokens=50000, usage_known=True,
                                    prompt_tokens=3000, completion_tokens=1000)])  # fmt: skip
    assert (await ledger.reserve(k, 20000)).granted  # 4k + 20k


async def test_model_limits_are_per_model_on_a_provider_without_a_shared_pool(ledger):
    assert await grants(ledger, key("permodel", "c1", "m2"), 8) == 5
    assert await grants(ledger, key("permodel", "c1", "m1"), 8) == 8


async def test_an_account_override_replaces_the_registrys_limit(ledger):
    ledger.book.set_overrides({("pool", "acct-1"): {"rpd": 1000, "rpm": 3, "credits_usd": 5.0}})
    assert await grants(ledger, key(), 10) == 3
    assert await grants(ledger, key(account="acct-2"), 25) == 20


async def test_a_request_that_never_reached_the_provider_gives_its_request_back(ledger):
    reservations = [await ledger.reserve(key(), 100) for _ in range(20)]
    assert not (await ledger.reserve(key(), 0)).granted
    await ledger.settle([Settlement(key(), reservations[0].reservation_id, outcome="not_sent", estimated_tokens=100)])
    assert (await ledger.reserve(key(), 0)).granted
    await ledger.settle([Settlement(key(), reservations[1].reservation_id, outcome="server", estimated_tokens=100)])
    assert not (await ledger.reserve(key(), 0)).granted  # a 500 reached the provider: it counts


async def test_a_429s_wait_closes_the_key_until_then_and_headers_cap_what_is_left(ledger, clock):
    k = key("permodel", "c1", "m1")
    r = await ledger.reserve(k, 10)
    await ledger.settle([Settlement(k, r.reservation_id, outcome="rate_limited", upstream_status=429, retry_after_s=7)])
    denied = await ledger.reserve(k, 10)
    assert not denied.granted and denied.retry_after_s == pytest.approx(7)
    clock.now += 7
    r = await ledger.reserve(k, 10)
    headers = {"x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "6m0s"}
    await ledger.settle([Settlement(k, r.reservation_id, outcome="ok", upstream_status=200, upstream_headers=headers)])
    assert await grants(ledger, k, 5) == 2
    clock.now += 360
    assert await grants(ledger, k, 5) == 5


async def test_a_limit_named_by_the_provider_is_learned_when_tighter(ledger):
    k = key("permodel", "c1", "m1")
    r = await ledger.reserve(k, 0)
    headers = {"x-ratelimit-limit-requests-day": "4", "x-ratelimit-limit-tokens-minute": "90000"}
    await ledger.settle([Settlement(k, r.reservation_id, upstream_status=200, upstream_headers=headers)])
    assert await grants(ledger, k, 10) == 3  # 4 per day, one already used; 90k TPM is looser than 60k
    assert (await ledger.reserve(k, 0)).reason == "rpd 4 on permodel/c1/m1"


async def test_geminis_per_day_quota_failure_closes_the_key_until_the_day_resets(ledger):
    k = key("pacific", "g1", "gemini")
    r = await ledger.reserve(k, 0)
    await ledger.settle([Settlement(k, r.reservation_id, outcome="rate_limited", upstream_status=429, retry_after_s=47,
                                    quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier")])  # fmt: skip
    assert (await ledger.reserve(k, 0)).retry_after_s == pytest.approx(19 * 3600 - 30)


async def test_a_reservation_never_settled_keeps_its_estimate_and_is_forgotten(ledger, clock):
    k = key("permodel", "c1", "m1")
    lost = await ledger.reserve(k, 40000)
    clock.now += 1
    assert not (await ledger.reserve(k, 30000)).granted
    clock.now += 600  # the reservation's record expired (and the minute with it)
    await ledger.settle([Settlement(k, lost.reservation_id, estimated_tokens=40000, usage_known=True,
                                    prompt_tokens=10, completion_tokens=5)])  # fmt: skip
    assert len(ledger.counters._reservations) == 0
    rows = await ledger.query_usage(UsageQuery(NOON - 10, NOON + 1000, group_by=("model",)))
    assert [(r.requests, r.prompt_tokens, r.completion_tokens) for r in rows] == [(1, 10, 5)]


async def test_headroom_reports_the_tightest_window_and_the_wait_when_empty(ledger):
    await grants(ledger, key(), 15)
    k2 = key("permodel", "c1", "m2")
    await grants(ledger, k2, 5)
    room = await ledger.headroom([key(), k2, key("unknown", "u", "m")])
    assert room[key()].remaining == pytest.approx(0.25)  # 5 of 20 per minute left (35 of 50 per day)
    assert (room[k2].remaining, room[k2].retry_after_s) == (0.0, pytest.approx(30))
    assert room[key("unknown", "u", "m")].remaining == 1.0


async def test_a_reservation_says_what_headroom_would_say_of_its_key_once_charged(ledger):
    # The router ranks accounts from its own reservations' answers (no Headroom call per request).
    await grants(ledger, key(), 14)
    single = await ledger.reserve(key(), 0)
    assert single.remaining == pytest.approx(0.25) == (await ledger.headroom([key()]))[key()].remaining
    k = key("permodel", "c1", "m1")  # 30 RPM: a lease of 7 leaves 23 of 30
    lease = await ledger.reserve(k, 1000, requests=64)
    assert (lease.requests, lease.remaining) == (7, pytest.approx(23 / 30))
    await grants(ledger, key(), 5)
    assert (await ledger.reserve(key(), 0)).remaining == 0.0  # denied


async def test_every_settlement_is_a_usage_row_with_the_cost_avoided(ledger):
    k = key("permodel", "c1", "m1")
    r = await ledger.reserve(k, 100)
    await ledger.settle([
        Settlement(k, r.reservation_id, client_id="cli-1", estimated_tokens=100, usage_known=True, prompt_tokens=1000000,
                   completion_tokens=2000000, latency_ms=12.5),
        Settlement(k, "", client_id="cli-2", outcome="server", latency_ms=3),
    ])  # fmt: skip
    rows = await ledger.query_usage(UsageQuery(NOON - 10, NOON + 10, group_by=("client_id", "outcome")))
    assert [(r.dimensions, r.requests, r.attempts, r.prompt_tokens, r.cost_avoided_usd) for r in rows] == [
        ((("client_id", "cli-1"), ("outcome", "ok")), 1, 1, 1000000, pytest.approx(3.5)),
        ((("client_id", "cli-2"), ("outcome", "server")), 0, 1, 0, 0.0),
    ]


async def test_a_clients_requests_per_minute_and_token_budget(clock):
    from llmagg_ratelimit.domain.clients import ClientLimits

    ledger = make_ledger(clock, ClientLimits(rpm=2, tpd=100))
    assert [(await ledger.check_client("cli")).allowed for _ in range(3)] == [True, True, False]
    assert (await ledger.check_client("cli")).limit_name == "rpm"
    clock.now += 60
    await ledger.settle(
        [Settlement(key(), "", client_id="cli", usage_known=True, prompt_tokens=60, completion_tokens=40)]
    )
    refused = await ledger.check_client("cli")
    assert (refused.allowed, refused.limit_name, refused.denied_limit) == (False, "tpd", 100)
    assert refused.retry_after_s == pytest.approx(12 * 3600 - 90)
    assert (await ledger.check_client("other")).allowed


def counter(ledger, name: str) -> int:
    [value] = [v for c, (v, _) in ledger.counters.counters().items() if f"|{name}|" in c and c.startswith("m|")]
    return value


async def test_a_lease_is_a_share_of_what_is_left_charged_when_granted(ledger):
    k = key("permodel", "c1", "m1")  # 30 RPM, 60k TPM, 14,400 RPD, 1M TPD
    lease = await ledger.reserve(k, 1000, requests=64)
    # A quarter of each limit at most: 7 of the 30 requests (the TPM would allow 15 at 1,000 each).
    assert (lease.granted, lease.requests, lease.tokens, lease.valid_for_s) == (True, 7, 7000, 1.0)
    assert (counter(ledger, "rpm"), counter(ledger, "tpm")) == (7, 7000)
    second = await ledger.reserve(k, 1000, requests=64)
    assert (second.requests, second.tokens) == (5, 5000)  # a quarter of the 23 left
    assert counter(ledger, "rpm") == 12


async def test_a_leases_uses_charge_their_difference_and_the_rest_comes_back(ledger):
    k = key("permodel", "c1", "m1")
    lease = await ledger.reserve(k, 1000, requests=4)
    assert lease.requests == 4
    rid = lease.reservation_id
    await ledger.settle([
        Settlement(k, rid, estimated_tokens=1000, usage_known=True, prompt_tokens=1500, leased=True),
        Settlement(k, rid, estimated_tokens=1000, outcome="not_sent", leased=True),  # its request comes back
    ])  # fmt: skip
    assert (counter(ledger, "rpm"), counter(ledger, "tpm")) == (3, 3500)
    await ledger.settle([], [LeaseReturn(rid, 2, 2000)])
    assert (counter(ledger, "rpm"), counter(ledger, "tpm")) == (1, 1500)  # the truth: one request, 1,500 tokens
    await ledger.settle([Settlement(k, rid, estimated_tokens=1000, usage_known=True, prompt_tokens=1200, leased=True)])
    assert (counter(ledger, "rpm"), counter(ledger, "tpm")) == (1, 1700)  # late: only what went past its estimate


async def test_no_lease_where_a_limit_has_room_for_one_or_its_window_is_ending(ledger, clock):
    single = await ledger.reserve(key("pacific", "p1", "x"), 0, requests=64)  # 3 a day: a quarter is none
    assert (single.granted, single.requests, single.valid_for_s) == (True, 1, 0.0)
    clock.now = NOON + 29.97  # 30 ms before the minute ends
    assert (await ledger.reserve(key("permodel", "c1", "m1"), 10, requests=64)).requests == 1
    clock.now = NOON + 29.5
    assert (await ledger.reserve(key("permodel", "c1", "m1"), 10, requests=64)).valid_for_s == pytest.approx(0.5)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 30000), st.sampled_from(["ok", "server", "not_sent", "abandoned"]),
                  st.one_of(st.none(), st.integers(0, 30000)), st.integers(0, 90), st.integers(1, 12)),
        max_size=60,
    )
)  # fmt: skip
async def test_no_sequence_of_reservations_and_settlements_goes_over_a_limit(steps):
    """Whatever is reserved (alone or leased), settled and when: per minute at most 30 requests are granted,
    the tokens granted plus charged never exceed 60k in a minute when reserved, and what is charged is the truth."""
    clock = Clock()
    ledger = make_ledger(clock)
    k = QuotaKey("permodel", "c1", "m1")
    granted_per_minute: dict[int, int] = {}
    open_reservations = []
    for model_pick, tokens, outcome, actual, advance, requests in steps:
        clock.now += advance
        decision = await ledger.reserve(k, tokens, requests)
        minute = int(clock.now // 60)
        if decision.granted:
            granted_per_minute[minute] = granted_per_minute.get(minute, 0) + decision.requests
            open_reservations.append((decision.reservation_id, tokens, decision.requests))
        if open_reservations and model_pick == 0:
            rid, estimate, leased = open_reservations.pop(0)
            await ledger.settle([Settlement(k, rid, estimated_tokens=estimate, outcome=outcome, usage_known=actual is not None,
                                            prompt_tokens=actual or 0, leased=leased > 1)])  # fmt: skip
            if leased > 1:
                await ledger.settle([], [LeaseReturn(rid, leased - 1, (leased - 1) * estimate)])
        for counter, (value, _) in ledger.counters.counters().items():
            if counter.endswith(f"|rpm|{minute * 60}") and counter.startswith("m|"):
                assert value <= 30
    assert all(n <= 30 for n in granted_per_minute.values())


async def test_admin_keys_have_no_client_limits_unless_given_their_own(clock):
    from llmagg_ratelimit.domain.clients import ClientLimits, ClientPolicy

    ledger = make_ledger(clock, ClientLimits(rpm=1))
    ledger.clients = ClientPolicy(ClientLimits(rpm=1), {"ops": ClientLimits(rpm=2)})
    assert [(await ledger.check_client("root", scope="admin")).allowed for _ in range(3)] == [True] * 3
    assert [(await ledger.check_client("ops", scope="admin")).allowed for _ in range(3)] == [True, True, False]
    assert [(await ledger.check_client("app")).allowed for _ in range(2)] == [True, False]


async def test_the_catalogue_tightens_the_registrys_limits_never_loosens_them_and_overrides_win(ledger):
    k = key("permodel", "c1", "m2")  # 5 a minute in the registry
    ledger.book.set_discovered({}, {("permodel", "m2"): {"rpm": 2, "credits": 5}, ("permodel", "m1"): {}})
    assert await grants(ledger, k, 4) == 2
    assert (await ledger.reserve(k, 0)).reason == "rpm 2 on permodel/c1/m2"
    assert await grants(ledger, key("permodel", "c1", "m1"), 31) == 30  # limits it does not name: the registry's
    ledger.book.set_discovered({"pool": {"rpm": 30, "rpd": 4}}, {("permodel", "m2"): {"rpm": 100}})
    assert await grants(ledger, key(account="acct-9"), 6) == 4  # rpd 4 tightens; rpm 30 does not lift 20
    assert await grants(ledger, key("permodel", "c2", "m2"), 7) == 5  # 100 does not lift the registry's 5
    ledger.book.set_overrides({("pool", "acct-8"): {"rpd": 2}})
    assert await grants(ledger, key(account="acct-8"), 6) == 2


async def test_a_batch_sent_again_after_a_timeout_is_applied_once(ledger):
    k = key("permodel", "c1", "m1")
    lease = await ledger.reserve(k, 1000, requests=4)
    used = Settlement(k, lease.reservation_id, estimated_tokens=1000, outcome="not_sent", leased=True)
    back = LeaseReturn(lease.reservation_id, 3, 3000)
    assert (await ledger.settle([used], [back], batch_id="batch-1")).applied == 1
    assert (await ledger.settle([used], [back], batch_id="batch-1")).applied == 0  # the retry: nothing again
    assert counter(ledger, "rpm") == 0  # the request never reached the provider; the rest came back once
    rows = await ledger.usage.query(UsageQuery(0, 2e9))
    assert [row.attempts for row in rows] == [1]


def test_only_whole_finite_request_and_token_limits_are_enforced():
    limits = {"rpm": 0.5, "rpd": float("inf"), "tpm": 10.2, "tpd": -3, "credits": 5, "rph": float("nan")}
    assert count_limits(limits) == {"rpm": 1, "tpm": 11}


async def test_a_batch_whose_usage_rows_could_not_be_stored_stores_them_when_it_comes_again(ledger):
    """The usage store fails (PostgreSQL restarting) after the batch was applied to the counters: the
    router sends the batch again, which must store its rows then, and charge the counters only once."""
    k = key("permodel", "c1", "m1")
    lease = await ledger.reserve(k, 100, requests=4)
    used = Settlement(k, lease.reservation_id, estimated_tokens=100, usage_known=True, leased=True,
                      prompt_tokens=30, completion_tokens=20, client_id="client-1")  # fmt: skip
    back = LeaseReturn(lease.reservation_id, 3, 300)
    write = ledger.usage.write

    async def unavailable(rows, batch_id=""):
        raise ConnectionError("the usage store is restarting")

    ledger.usage.write = unavailable
    with pytest.raises(ConnectionError):
        await ledger.settle([used], [back], batch_id="batch-2")
    ledger.usage.write = write
    await ledger.settle([used], [back], batch_id="batch-2")  # the router's retry, the same batch id
    rows = await ledger.usage.query(UsageQuery(0, 2e9))
    assert [(row.attempts, row.prompt_tokens, row.completion_tokens) for row in rows] == [(1, 30, 20)]
    assert (counter(ledger, "rpm"), counter(ledger, "tpm")) == (1, 50)  # the lease's unused rest came back once


async def test_a_batch_whose_replica_died_before_storing_its_rows_is_stored_once_by_the_replica_it_goes_to_next(clock):
    """Two ratelimit replicas share the counters (Valkey) and the usage ledger (PostgreSQL). One applies a
    batch to the counters and is killed before its rows are stored; the router sends the batch again and
    it reaches the other replica: the rows are stored then, once, and the counters are not charged again.
    A third sending (the answer lost again) stores nothing more."""
    counters = MemoryCounters()
    dying, survivor = make_ledger(clock, counters=counters), make_ledger(clock, counters=counters)
    survivor.usage = shared = make_ledger(clock).usage  # the one usage ledger behind both replicas
    k = key("permodel", "c1", "m1")
    used = Settlement(k, "", estimated_tokens=100, usage_known=True, prompt_tokens=30, completion_tokens=20,
                      client_id="client-1")  # fmt: skip

    async def killed(rows, batch_id=""):
        raise asyncio.CancelledError  # SIGKILL in the middle of the write: nothing stored, no answer

    dying.usage.write = killed
    with pytest.raises(asyncio.CancelledError):
        await dying.settle([used], batch_id="batch-3")
    await survivor.settle([used], batch_id="batch-3")
    await survivor.settle([used], batch_id="batch-3")
    rows = await shared.query(UsageQuery(0, 2e9))
    assert [(row.attempts, row.prompt_tokens, row.completion_tokens) for row in rows] == [(1, 30, 20)]
    assert (counter(survivor, "rpm"), counter(survivor, "tpm")) == (1, 50)
