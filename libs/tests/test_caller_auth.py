"""A service's port answers the gateway and its peers only: every other call is UNAUTHENTICATED, before
any servicer, span or log line sees it; health checks and reflection need no token."""

from __future__ import annotations

import importlib

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from llmagg.common.caller_auth import GATEWAY, caller_tokens, callers_of, calling_peer
from llmagg.common.server import GrpcServer, ServiceBinding
from llmagg.common.settings import ServiceSettings
from llmagg.router.v1 import router_pb2, router_pb2_grpc
from llmagg.suite import SERVICES

TOKEN = "gateway-token-for-tests"


class Recorder(router_pb2_grpc.RouterServiceServicer):
    def __init__(self) -> None:
        self.callers: list[str | None] = []

    async def Chat(self, request, context):
        self.callers.append(calling_peer.get())
        return router_pb2.ChatResponse(id="served")

    async def StreamChat(self, request, context):
        self.callers.append(calling_peer.get())
        yield router_pb2.StreamChatResponse(id="served")


@pytest.fixture
async def served():
    settings = ServiceSettings(host="127.0.0.1", port=0, gateway_token=TOKEN, drain_s=0, grace_s=0.1)
    recorder = Recorder()
    binding = ServiceBinding(
        "llmagg.router.v1.RouterService", recorder, router_pb2_grpc.add_RouterServiceServicer_to_server
    )
    server = GrpcServer("test", settings, [binding])
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel, recorder
    await server.stop()


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("x-llmagg-client-id", "someone"),),
        (("x-llmagg-service-token", "wrong"),),
        (("x-llmagg-service-token", ""),),
    ],
)
async def test_a_call_without_a_known_token_is_unauthenticated_and_reaches_nothing(served, metadata):
    channel, recorder = served
    stub = router_pb2_grpc.RouterServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await stub.Chat(router_pb2.ChatRequest(), metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError) as streaming:
        async for _ in stub.StreamChat(router_pb2.StreamChatRequest(), metadata=metadata):
            pass
    assert unary.value.code() is streaming.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "missing_service_token" in dict(unary.value.trailing_metadata())["x-openai-error"]
    assert recorder.callers == []


async def test_the_gateways_token_is_served_and_named(served):
    channel, recorder = served
    stub = router_pb2_grpc.RouterServiceStub(channel)
    metadata = (("x-llmagg-service-token", TOKEN),)
    assert (await stub.Chat(router_pb2.ChatRequest(), metadata=metadata)).id == "served"
    assert [m.id async for m in stub.StreamChat(router_pb2.StreamChatRequest(), metadata=metadata)] == ["served"]
    assert recorder.callers == [GATEWAY, GATEWAY]


async def test_health_checks_and_reflection_need_no_token(served):
    channel, _ = served
    health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    assert [r.list_services_response.service[0].name async for r in reflection]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_every_service_reads_a_token_for_the_gateway_and_for_each_service_that_calls_it(service):
    module, _, name = service.settings_class.partition(":")
    settings_class = getattr(importlib.import_module(module), name)
    environment = {service.token_variable(caller): f"{caller}-token-for-tests" for caller in callers_of(service.name)}
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in environment.items():
            patch.setenv(variable, value)
        tokens = caller_tokens(service.name, settings_class())
    assert {caller: token.reveal() for caller, token in tokens.items()} == {
        caller: f"{caller}-token-for-tests" for caller in callers_of(service.name)
    }


def test_two_callers_sharing_one_token_is_refused_at_start():
    """A token names one caller: the gateway's token set for the router too would let gateway traffic
    pass as the router (which may then reserve quota or read every account's headroom)."""
    from llmagg.common.caller_auth import CallerAuthInterceptor
    from llmagg.common.secrets import Secret

    with pytest.raises(ValueError) as refused:
        CallerAuthInterceptor({"gateway": Secret("same-token-1234"), "router": Secret("same-token-1234")})
    assert str(refused.value) == "the gateway and the router share one service token: each caller needs its own"
    assert (
        CallerAuthInterceptor({"gateway": Secret("token-a-1234"), "router": Secret("token-b-1234")}).caller(
            "token-b-1234"
        )
        == "router"
    )


async def test_a_refused_call_is_counted_and_logged_without_its_token(caplog):
    """An operator sees calls refused at a service's port (a misconfigured peer, a scan): counted as
    UNAUTHENTICATED for the method, and said in the log without the token presented."""
    from prometheus_client import CollectorRegistry

    from llmagg_devstack import free_port

    registry = CollectorRegistry()
    settings = ServiceSettings(
        host="127.0.0.1", port=0, metrics_port=free_port(), gateway_token=TOKEN, drain_s=0, grace_s=0.1
    )
    binding = ServiceBinding(
        "llmagg.router.v1.RouterService", Recorder(), router_pb2_grpc.add_RouterServiceServicer_to_server
    )
    server = GrpcServer("test", settings, [binding], registry=registry)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            for _ in range(3):
                with pytest.raises(grpc.aio.AioRpcError):
                    await stub.Chat(router_pb2.ChatRequest(), metadata=(("x-llmagg-service-token", "forged-1234"),))
    finally:
        await server.stop()
    labels = {"service": "test", "method": "/llmagg.router.v1.RouterService/Chat", "code": "UNAUTHENTICATED"}
    assert registry.get_sample_value("llmagg_grpc_server_handled_total", labels) == 3
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == [
        "refused a call to /llmagg.router.v1.RouterService/Chat without a known service token"
        " (said once a minute per method)"
    ]
    assert "forged-1234" not in caplog.text
