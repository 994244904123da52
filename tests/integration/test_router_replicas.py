"""Two router processes on one real Valkey (ROUTER_HEALTH_STORE=redis), with the same configuration: a 429
that one replica gets cools that account down on the other, which then skips it without calling it; a
replica started later skips it from its first request."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmagg.router.v1 import router_pb2 as pb
from llmagg.router.v1 import router_pb2_grpc
from llmagg.suite import service
from llmagg_devstack import (
    ManagedProcess,
    Ports,
    Stack,
    Valkey,
    free_port,
    grpc_serving,
    needed,
    start_valkey,
    write_config,
)

from ..helpers import SIM_KEY, SIM_KEY_ENV, arrivals, wait_for

LIMITED, BACKUP = "replica-429", "replica-backup"  # simulated providers of their own: no other test uses them
ALIAS = "replica-model"
HELLO = [pb.ChatMessage(role="user", content="echo: replicas")]
ROUTER = service("router")
GATEWAY_TOKEN = "gateway-token-of-the-replicas-for-tests"
AS_GATEWAY = (("x-llmagg-service-token", GATEWAY_TOKEN),)


def router_process(run_dir: Path, name: str, valkey: Valkey, config: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        name,
        [sys.executable, "-m", ROUTER.package],
        log_path=run_dir / f"{name}.log",
        env={
            SIM_KEY_ENV: SIM_KEY,
            "ROUTER_PORT": str(port),
            "ROUTER_METRICS_PORT": "0",
            "ROUTER_HTTP_PORT": "0",  # gRPC only: the table's 50061 would be one port for all of them
            "ROUTER_CONFIG": str(config),
            "ROUTER_HEALTH_STORE": "redis",
            "ROUTER_REDIS_TIMEOUT_S": "0.3",
            "ROUTER_READINESS_INTERVAL_S": "0.2",
            "ROUTER_DRAIN_S": "0",
            "ROUTER_LOG_LEVEL": "INFO",
            "ROUTER_GATEWAY_TOKEN": GATEWAY_TOKEN,
            # What the dev stack hands the router: ROUTER_REDIS_URL and ROUTER_REDIS_PREFIX.
            **valkey.env_for(ROUTER, "replicas"),
        },
    )
    address = f"127.0.0.1:{port}"
    try:
        process.wait_until(lambda: grpc_serving(address), 60, "gRPC health SERVING")
    except BaseException:
        process.stop()
        raise
    return process, address


def chat(address: str) -> pb.ChatResponse:
    with grpc.insecure_channel(address) as channel:
        return router_pb2_grpc.RouterServiceStub(channel).Chat(
            pb.ChatRequest(model=ALIAS, messages=HELLO), metadata=AS_GATEWAY, timeout=30
        )


def cooling(address: str) -> dict[str, list[dict]]:
    """Account alias -> its cooldowns, as the replica's routing state shows them."""
    with grpc.insecure_channel(address) as channel:
        body = router_pb2_grpc.RouterServiceStub(channel).GetRoutingState(
            pb.GetRoutingStateRequest(), metadata=AS_GATEWAY, timeout=5
        )
    state = json.loads(body.data)
    return {a["alias"]: a["cooling"] for p in state["providers"] for a in p["accounts"]}


def redis_health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        request = health_pb2.HealthCheckRequest(service="redis")
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=2).status


def test_the_router_needs_valkey_only_when_its_health_store_is_redis_and_the_stack_tells_it_where(tmp_path):
    assert needed([ROUTER], {}) == []
    assert needed([ROUTER], {"ROUTER_HEALTH_STORE": "redis"}) == ["valkey"]
    assert needed([service("ratelimit")], {"RATELIMIT_STORE": "redis"}) == ["valkey"]
    assert needed([service("ratelimit")], {"ROUTER_HEALTH_STORE": "redis"}) == []  # each by its own setting
    assert needed([ROUTER, service("ratelimit")], {"ROUTER_HEALTH_STORE": "redis", "RATELIMIT_STORE": "redis"}) == [
        "valkey"
    ]
    valkey = Valkey(tmp_path, 6390, process=None)  # not started: only its settings are read
    stack = Stack(tmp_path, Ports.free(), namespace="ns", dependencies={"valkey": valkey})
    environment = stack.environment(ROUTER)
    assert (environment["ROUTER_REDIS_URL"], environment["ROUTER_REDIS_PREFIX"]) == (valkey.url, "ns")


@dataclass
class Replicas:
    run_dir: Path
    config: Path
    valkey: Valkey
    started: list[ManagedProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started.append(self.valkey.process)

    def start(self, name: str) -> str:
        """A router replica on the Valkey; its address."""
        process, address = router_process(self.run_dir, name, self.valkey, self.config)
        self.started.append(process)
        return address

    def restart_valkey(self) -> None:
        """Valkey again, on its port and data directory."""
        self.started.append(start_valkey(self.run_dir, self.valkey.port).process)


@pytest.fixture
def replicas(simulator, tmp_path):
    """Valkey, the two providers (one answering 429 with Retry-After 60) and two routers on it."""
    config = write_config(
        tmp_path / "config.yaml",
        {
            "providers": [
                {
                    "id": name,
                    "name": f"Simulated {name}",
                    "base_url": simulator.base_url(name),
                    "speed": speed,
                    "models": [{"id": "sim-small", "quality": 3, "context_window": 32768, "aliases": [ALIAS]}],
                }
                for name, speed in ((LIMITED, 5), (BACKUP, 1))  # the faster is tried first
            ],
            "accounts": [
                {"provider": name, "alias": f"{name}-acct", "api_key_env": SIM_KEY_ENV} for name in (LIMITED, BACKUP)
            ],
        },
    )
    for name in (LIMITED, BACKUP):
        simulator.reset(name)
    simulator.set_behaviour(LIMITED, {"type": "429", "retry_after": 60})
    replicas = Replicas(tmp_path, config, start_valkey(tmp_path, free_port()))
    try:
        yield replicas
    finally:
        for process in reversed(replicas.started):
            process.stop()
        for name in (LIMITED, BACKUP):
            simulator.reset(name)


def test_a_429_seen_by_one_replica_makes_the_other_skip_that_account(replicas, simulator):
    first, second = replicas.start("router-a"), replicas.start("router-b")
    serving = health_pb2.HealthCheckResponse.SERVING
    assert redis_health(first) == serving and redis_health(second) == serving

    answer = chat(first)
    assert (answer.route.provider, answer.route.account, answer.route.attempts) == (BACKUP, f"{BACKUP}-acct", 2)
    # The other replica learns the cooldown without a request of its own.
    wait_for(lambda: cooling(second).get(f"{LIMITED}-acct"), "the cooldown on the other replica")
    answer = chat(second)
    assert (answer.route.provider, answer.route.attempts) == (BACKUP, 1)
    # Exactly: the 429 once (replica A), then the backup for each replica; the limited provider never again.
    assert arrivals(simulator, [LIMITED, BACKUP]) == [LIMITED, BACKUP, BACKUP]

    # A replica started now reads the cooldown at start: its first request skips the account too.
    third = replicas.start("router-c")
    assert cooling(third).get(f"{LIMITED}-acct")
    assert chat(third).route.provider == BACKUP
    assert arrivals(simulator, [LIMITED, BACKUP]) == [LIMITED, BACKUP, BACKUP, BACKUP]


def test_with_valkey_stopped_each_replica_steers_alone_and_shares_what_it_learned_once_valkey_is_back(
    replicas, simulator
):
    first, second = replicas.start("router-a"), replicas.start("router-b")
    replicas.valkey.process.stop()
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    wait_for(lambda: redis_health(first) == not_serving and redis_health(second) == not_serving, "redis NOT_SERVING")
    # Alone, the replica that got the 429 still steers by it; the other has not heard of it.
    assert chat(first).route.provider == BACKUP
    assert cooling(first).get(f"{LIMITED}-acct") and not cooling(second).get(f"{LIMITED}-acct")
    assert arrivals(simulator, [LIMITED, BACKUP]) == [LIMITED, BACKUP]

    replicas.restart_valkey()
    serving = health_pb2.HealthCheckResponse.SERVING
    wait_for(lambda: redis_health(first) == serving and redis_health(second) == serving, "redis SERVING again")
    wait_for(lambda: cooling(second).get(f"{LIMITED}-acct"), "the cooldown shared after the outage")
    assert chat(second).route.provider == BACKUP
    assert arrivals(simulator, [LIMITED, BACKUP]) == [LIMITED, BACKUP, BACKUP]
