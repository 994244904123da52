"""ROUTER_WORKERS=2: two router processes on one port (SO_REUSEPORT), each with its own /metrics on
ROUTER_METRICS_PORT + its index; a worker that dies is started again; SIGTERM to the parent stops them all."""

from __future__ import annotations

import os
import signal
import socket
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmagg.router.v1 import router_pb2 as pb
from llmagg.router.v1 import router_pb2_grpc
from llmagg.suite import service
from llmagg_devstack import ManagedProcess, free_port, grpc_serving

from ..helpers import SIM_KEY, SIM_KEY_ENV, wait_for

ROUTER = service("router")
GATEWAY_TOKEN = "gateway-token-of-the-workers-for-tests"
AS_GATEWAY = (("x-llmagg-service-token", GATEWAY_TOKEN),)
REQUESTS = 24


def metrics_ports() -> int:
    """A free port whose next one is free too: worker i serves its metrics on port + i."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = (
        Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] if Path(f"/proc/{pid}").exists() else "X"
    )
    return state != "Z"


def handled(metrics_port: int) -> float:
    """The Chat RPCs this worker answered."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "llmagg_grpc_server_handled_total" and sample.labels["method"].endswith("/Chat")
    )


def serving(metrics_port: int) -> bool:
    try:
        handled(metrics_port)
    except OSError:
        return False
    return True


@pytest.fixture
def workers(tmp_path, router_config):
    port, metrics = free_port(), metrics_ports()
    process = ManagedProcess(
        "router",
        [sys.executable, "-m", ROUTER.package],
        log_path=tmp_path / "router.log",
        env={
            SIM_KEY_ENV: SIM_KEY,
            "ROUTER_WORKERS": "2",
            "ROUTER_PORT": str(port),
            "ROUTER_METRICS_PORT": str(metrics),
            "ROUTER_HTTP_PORT": "0",  # gRPC only here (not the table's 50061, which another test may hold)
            "ROUTER_CONFIG": str(router_config),
            "ROUTER_DRAIN_S": "0",
            "ROUTER_LOG_LEVEL": "INFO",
            "ROUTER_GATEWAY_TOKEN": GATEWAY_TOKEN,
        },
    )
    address = f"127.0.0.1:{port}"
    try:
        process.wait_until(lambda: grpc_serving(address) and serving(metrics) and serving(metrics + 1), 60, "2 workers")
        yield process, address, metrics
    finally:
        process.stop()


def chat_on_a_new_connection(address: str) -> pb.ChatResponse:
    # A channel of its own opens a connection of its own: the kernel picks a worker per connection.
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        return router_pb2_grpc.RouterServiceStub(channel).Chat(
            pb.ChatRequest(model="chat-model", messages=[pb.ChatMessage(role="user", content="echo: hi")]),
            metadata=AS_GATEWAY,
            timeout=30,
        )


def test_two_workers_on_one_port_both_serve_and_sigterm_to_the_parent_ends_them_all(workers):
    process, address, metrics = workers
    pids = children(process.process.pid)
    assert len(set(pids)) == 2
    for _ in range(REQUESTS):
        assert chat_on_a_new_connection(address).route.provider == "sim-fast"
    per_worker = [handled(metrics), handled(metrics + 1)]
    assert sum(per_worker) == REQUESTS and min(per_worker) >= 1, per_worker
    assert process.stop() == 0
    assert not [pid for pid in pids if alive(pid)]
    assert "2 workers" in process.output() and all(str(pid) in process.output() for pid in pids)


def test_a_worker_that_dies_is_started_again(workers):
    process, address, metrics = workers
    first, second = children(process.process.pid)
    os.kill(first, signal.SIGKILL)
    replaced = wait_for(
        lambda: second in (now := children(process.process.pid)) and first not in now and len(now) == 2 and now,
        "a new worker",
    )
    wait_for(lambda: serving(metrics) and serving(metrics + 1), "both workers' metrics")
    assert chat_on_a_new_connection(address).route.provider == "sim-fast"
    assert len(set(replaced) - {second}) == 1
    assert process.stop() == 0
    assert not [pid for pid in replaced if alive(pid)]


def start_parent(tmp_path: Path, port: int, **env: str) -> ManagedProcess:
    return ManagedProcess(
        "router",
        [sys.executable, "-m", ROUTER.package],
        log_path=tmp_path / "router.log",
        env={
            "ROUTER_WORKERS": "2",
            "ROUTER_PORT": str(port),
            "ROUTER_METRICS_PORT": "0",
            "ROUTER_HTTP_PORT": "0",
            **env,
        },
    )


def test_a_port_another_process_serves_on_is_refused_before_any_worker_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        parent = start_parent(tmp_path, taken.getsockname()[1])
        assert parent.process.wait(30) == 1
    assert "cannot serve 2 workers on 127.0.0.1" in parent.output() and "worker 0 started" not in parent.output()
    parent.stop()


def test_an_invalid_configuration_stops_every_worker_and_the_parent_with_status_2(tmp_path):
    parent = start_parent(tmp_path, free_port(), ROUTER_CONFIG=str(tmp_path / "missing.yaml"))
    assert parent.process.wait(60) == 2
    assert "invalid configuration" in parent.output() and "all workers stopped" in parent.output()
    parent.stop()
