"""Two ratelimit processes on one real Valkey: thousands of concurrent reservations never go over a
limit together; with Valkey stopped they keep deciding on their share, and once it is back Redis holds
what they granted alone and decides exactly again."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg.ratelimit.v1 import ratelimit_pb2_grpc
from llmagg_devstack import ManagedProcess, free_port, grpc_serving, start_valkey, write_config

from ..helpers import wait_for

TOKEN = "router-token-for-replica-tests"
ROUTER = (("x-llmagg-service-token", TOKEN),)
DAILY = 2000
KEY = pb.QuotaKey(provider="quota-test", account="acct", model="m")


def ratelimit_process(
    run_dir: Path, name: str, redis_url: str, config: Path, redis_timeout_s: str = "0.3"
) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        name,
        [sys.executable, "-m", "llmagg_ratelimit"],
        log_path=run_dir / f"{name}.log",
        env={
            "RATELIMIT_PORT": str(port),
            "RATELIMIT_METRICS_PORT": "0",
            "RATELIMIT_STORE": "redis",
            "RATELIMIT_REDIS_URL": redis_url,
            "RATELIMIT_REDIS_PREFIX": "replicas",
            "RATELIMIT_REDIS_TIMEOUT_S": redis_timeout_s,
            "RATELIMIT_LOCAL_SHARE": "0.5",
            "RATELIMIT_ROUTER_TOKEN": TOKEN,
            "RATELIMIT_CONFIG": str(config),
            "RATELIMIT_USAGE_PATH": str(run_dir / f"{name}.sqlite3"),
            "RATELIMIT_READINESS_INTERVAL_S": "0.2",
            "RATELIMIT_DRAIN_S": "0",
        },
    )
    address = f"127.0.0.1:{port}"
    process.wait_until(lambda: grpc_serving(address), 60, "gRPC health SERVING")
    return process, address


async def reserve_many(address: str, count: int, concurrency: int = 64) -> int:
    """`count` reservations, `concurrency` at a time; how many were granted."""
    granted = 0
    gate = asyncio.Semaphore(concurrency)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ratelimit_pb2_grpc.RatelimitServiceStub(channel)

        async def one() -> None:
            nonlocal granted
            async with gate:
                reply = await stub.Reserve(pb.ReserveRequest(key=KEY, estimated_tokens=1), metadata=ROUTER, timeout=10)
            granted += reply.granted

        await asyncio.gather(*(one() for _ in range(count)))
    return granted


async def both(first: tuple[str, int], second: tuple[str, int]) -> tuple[int, int]:
    return tuple(await asyncio.gather(reserve_many(*first), reserve_many(*second)))


def headroom(address: str) -> pb.KeyHeadroom:
    with grpc.insecure_channel(address) as channel:
        stub = ratelimit_pb2_grpc.RatelimitServiceStub(channel)
        return stub.Headroom(pb.HeadroomRequest(keys=[KEY]), metadata=ROUTER, timeout=5).headroom[0]


def redis_health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        return (
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="redis"), timeout=2).status
        )


@pytest.fixture
def replicas(tmp_path, request):
    """Two replicas on one Valkey; their Redis calls time out after 0.3 s (`request.param`: another), so the
    tests that stop Valkey see the failover soon."""
    redis_timeout_s = getattr(request, "param", "0.3")
    config = write_config(
        tmp_path / "config.yaml",
        {
            "providers": [
                {
                    "id": "quota-test",
                    "name": "Quota test",
                    "base_url": "http://127.0.0.1:9/v1",
                    "limits": {"rpd": DAILY},
                    "models": [{"id": "m"}],
                }
            ]
        },
    )
    valkey_port = free_port()
    valkey = start_valkey(tmp_path, valkey_port)
    started: list[ManagedProcess] = [valkey.process]
    try:
        one, first = ratelimit_process(tmp_path, "ratelimit-1", valkey.url, config, redis_timeout_s)
        started.append(one)
        two, second = ratelimit_process(tmp_path, "ratelimit-2", valkey.url, config, redis_timeout_s)
        started.append(two)
        yield tmp_path, valkey, (first, second), (one, two)
    finally:
        for process in reversed(started):
            process.stop()


# 3,000 calls at once on a busy machine can keep a Redis call past 0.3 s: that replica then decides on its
# local share (the failover, tested below) and grants less than the limit. Exactness is tested with Redis up.
@pytest.mark.parametrize("replicas", ["10"], indirect=True)
async def test_two_replicas_on_one_valkey_never_grant_past_a_limit_together(replicas):
    _, _, (first, second), _ = replicas
    granted = await both((first, 1500), (second, 1500))
    assert sum(granted) == DAILY  # 3,000 asked at once through two processes: exactly the limit
    assert headroom(first).remaining == 0.0 and headroom(second).remaining == 0.0


async def test_with_valkey_stopped_replicas_decide_on_their_share_and_exactness_returns_with_it(replicas):
    run_dir, valkey, (first, second), (one, two) = replicas
    assert sum(await both((first, 500), (second, 500))) == 1000  # Valkey up: all granted
    for address in (first, second):  # each replica reads the counter once more: it saw 1,000 used
        assert headroom(address).remaining == pytest.approx(0.5)
    valkey.process.stop()
    # Alone, each may grant half of the 1,000 left: one asks for more and is held to its share.
    granted_alone = await both((first, 600), (second, 100))
    assert granted_alone == (500, 100)
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    assert redis_health(first) == not_serving and redis_health(second) == not_serving
    assert "Redis is unreachable" in one.output() and "Redis is unreachable" in two.output()
    valkey = start_valkey(run_dir, valkey.port)  # same data directory: what Valkey held survives
    try:
        serving = health_pb2.HealthCheckResponse.SERVING
        wait_for(lambda: redis_health(first) == serving and redis_health(second) == serving, "Redis in use again")
        # Redis holds 1,000 + 600 granted alone: exactly 400 are left, whoever asks.
        assert sum(await both((first, 500), (second, 500))) == DAILY - 1600
        assert "Redis is reachable again" in one.output()
    finally:
        valkey.process.stop()
