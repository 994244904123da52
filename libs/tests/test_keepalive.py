"""A long quiet stream between two services of the suite (WatchCatalog) survives the client's keepalive
pings: the channel helper pings only as often as the server builder lets it (no GOAWAY too_many_pings)."""

from __future__ import annotations

import asyncio

import pytest

from llmagg.common.grpc_client import keepalive_options, keepalive_policy, service_channel
from llmagg.common.server import GrpcServer, ServiceBinding
from llmagg.common.settings import ServiceSettings
from llmagg.router.v1 import router_pb2, router_pb2_grpc

TOKEN = "gateway-token-for-tests"
# gRPC sends at most a ping a second; a server that allowed fewer would drop the connection at the third
# ping it thought too early (max_ping_strikes is 2): five quiet seconds are five pings.
KEEPALIVE_S = 1.0
QUIET_S = 5.0


class QuietStream(router_pb2_grpc.RouterServiceServicer):
    def __init__(self) -> None:
        self.resume = asyncio.Event()

    async def StreamChat(self, request, context):
        yield router_pb2.StreamChatResponse(id="first")
        await self.resume.wait()
        yield router_pb2.StreamChatResponse(id="second")


@pytest.fixture
async def server():
    settings = ServiceSettings(
        host="127.0.0.1", port=0, gateway_token=TOKEN, keepalive_s=KEEPALIVE_S, drain_s=0, grace_s=0.1
    )
    servicer = QuietStream()
    binding = ServiceBinding(
        "llmagg.router.v1.RouterService", servicer, router_pb2_grpc.add_RouterServiceServicer_to_server
    )
    server = GrpcServer("test", settings, [binding])
    await server.start()
    yield server, servicer
    servicer.resume.set()
    await server.stop()


async def test_a_quiet_stream_is_not_dropped_for_its_keepalive_pings(server):
    server, servicer = server
    async with service_channel(f"127.0.0.1:{server.port}", keepalive_s=KEEPALIVE_S) as channel:
        call = router_pb2_grpc.RouterServiceStub(channel).StreamChat(
            router_pb2.StreamChatRequest(), metadata=(("x-llmagg-service-token", TOKEN),)
        )
        assert (await call.read()).id == "first"
        # The stimulus is the silence itself: many ping intervals with nothing sent either way.
        await asyncio.sleep(QUIET_S)
        servicer.resume.set()
        assert (await call.read()).id == "second"


def test_the_server_accepts_pings_at_least_as_often_as_the_client_sends_them():
    client = dict(keepalive_options(30.0))
    policy = dict(keepalive_policy(30.0))
    assert policy["grpc.keepalive_permit_without_calls"] == client["grpc.keepalive_permit_without_calls"] == 1
    assert policy["grpc.http2.min_ping_interval_without_data_ms"] < client["grpc.keepalive_time_ms"]
