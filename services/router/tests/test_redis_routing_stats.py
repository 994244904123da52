"""The meta-controller's stats in Valkey: shared by the replicas, kept over a restart."""

from __future__ import annotations

import secrets

import pytest

from llmagg.common.errors import ServiceError
from llmagg_devstack import free_port, start_valkey
from llmagg_router.adapters.redis_routing_stats import UNREACHABLE, RedisRoutingStats
from llmagg_router.backends import create_meta_controller
from llmagg_router.domain.meta_controller import MetaController
from llmagg_router.domain.routing_stats import ArmStats, Served
from llmagg_router.settings import RouterSettings


@pytest.fixture(scope="module")
def valkey(tmp_path_factory):
    server = start_valkey(tmp_path_factory.mktemp("valkey"), free_port())
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture
async def replicas(valkey):
    prefix = f"t{secrets.token_hex(4)}"
    started: list[RedisRoutingStats] = []

    async def start() -> RedisRoutingStats:
        store = RedisRoutingStats(valkey.url, prefix=prefix, timeout_s=0.3, sync_s=3600)  # synced by hand
        await store.start()
        started.append(store)
        return store

    yield start
    for store in started:
        await store.close()


async def test_what_one_replica_learns_the_other_reads_after_a_sync(replicas):
    one, two = await replicas(), await replicas()
    one.record("math", "fast/llama-8b", ArmStats(successes=1, good=0.75, bad=0.25, ttft_ms_sum=120, ttft_n=1))
    two.record("math", "fast/llama-8b", ArmStats(failures=1))
    assert one.stats("math")["fast/llama-8b"].attempts == 1  # at once, locally, without I/O
    await one.sync()
    await two.sync()
    await one.sync()
    for store in (one, two):
        seen = store.stats("math")["fast/llama-8b"]
        assert (seen.successes, seen.failures, seen.quality, seen.ttft_ms) == (1, 1, 0.75, 120)


async def test_the_stats_and_the_served_requests_survive_a_restart(replicas):
    one = await replicas()
    one.record("code", "smart/big-model", ArmStats(successes=2))
    one.remember("chatcmpl-1", Served("code", "smart/big-model", "key-a"))
    await one.close()
    again = await replicas()
    assert again.stats("code")["smart/big-model"].successes == 2
    assert await again.served("chatcmpl-1") == Served("code", "smart/big-model", "key-a")
    assert await again.served("chatcmpl-unknown") is None


def test_the_settings_choose_the_store(valkey):
    memory = create_meta_controller(RouterSettings(routing_stats="memory"))
    shared = create_meta_controller(RouterSettings(routing_stats="redis", redis_url=valkey.url))
    off = create_meta_controller(RouterSettings(meta_controller=False))
    assert (type(memory.store).__name__, type(shared.store).__name__, off) == (
        "MemoryRoutingStats",
        "RedisRoutingStats",
        None,
    )


async def test_feedback_on_an_answer_is_taken_once_across_replicas(replicas):
    one, two = await replicas(), await replicas()
    one.remember("chatcmpl-once", Served("code", "smart/big-model", "key-a"))
    await one.sync()
    first = MetaController(two)
    assert (await first.feedback("chatcmpl-once", 1.0, client_id="key-a")).arm == "smart/big-model"
    for replica in (two, one):
        with pytest.raises(ServiceError) as replayed:
            await MetaController(replica).feedback("chatcmpl-once", 1.0, client_id="key-a")
        assert replayed.value.code == "unknown_request_id"
    assert two.stats("code")["smart/big-model"].good == 1


async def test_served_requests_waiting_for_valkey_are_bounded():
    down = RedisRoutingStats(f"redis://127.0.0.1:{free_port()}", timeout_s=0.3, sync_s=3600, remembered=3)
    for n in range(5):
        down.remember(f"chatcmpl-{n}", Served("chat", "fast/llama-8b"))
    with pytest.raises(UNREACHABLE):
        await down.sync()
    down.remember("chatcmpl-5", Served("chat", "fast/llama-8b"))
    assert list(down.pending_served) == ["chatcmpl-3", "chatcmpl-4", "chatcmpl-5"]  # the oldest dropped first
    await down.close()
