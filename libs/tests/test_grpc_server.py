"""The shared server: errors become proper statuses with OpenAI JSON and retry hints; health works."""

import asyncio
import json
import sys

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.server import GrpcServer, ReadinessCheck, ServiceBinding, run
from llmagg.common.settings import ServiceSettings
from llmagg.router.v1 import router_pb2, router_pb2_grpc

GATEWAY_TOKEN = "gateway-token-for-tests"
AS_GATEWAY = (("x-llmagg-service-token", GATEWAY_TOKEN),)


class FailingServicer(router_pb2_grpc.RouterServiceServicer):
    async def Chat(self, request, context):
        if request.model == "limited":
            raise ServiceError(ErrorKind.RESOURCE_EXHAUSTED, "slow down", code="rate_limit_exceeded", retry_after_s=2.5)
        if request.model == "config":
            raise ServiceError(ErrorKind.UNAVAILABLE, "add an account", code="no_accounts_configured", retryable=False)
        raise RuntimeError("bug with secret sk-live-abcdefghijklmnop")

    async def StreamChat(self, request, context):
        yield router_pb2.StreamChatResponse(id="first")
        raise ServiceError(ErrorKind.NOT_FOUND, "gone", code="model_not_found")


@pytest.fixture
async def server():
    settings = ServiceSettings(host="127.0.0.1", port=0, gateway_token=GATEWAY_TOKEN, drain_s=0, grace_s=0.1)
    binding = ServiceBinding(
        "llmagg.router.v1.RouterService", FailingServicer(), router_pb2_grpc.add_RouterServiceServicer_to_server
    )
    server = GrpcServer("test", settings, [binding])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def channel(server):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


async def call_chat(channel, model):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router_pb2_grpc.RouterServiceStub(channel).Chat(router_pb2.ChatRequest(model=model), metadata=AS_GATEWAY)
    return caught.value


async def test_service_errors_become_their_status_with_openai_json_and_retry_hints(channel):
    error = await call_chat(channel, "limited")
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == "slow down"
    trailers = dict(error.trailing_metadata())
    assert json.loads(trailers["x-openai-error"])["error"] == {
        "message": "slow down",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert trailers["retry-after"] == "3" and trailers["retry-after-ms"] == "2500"
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    infos = {d.type_url.rsplit("/", 1)[-1] for d in status.details}
    assert infos == {"google.rpc.ErrorInfo", "google.rpc.RetryInfo"}
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert info.reason == "rate_limit_exceeded"


async def test_configuration_errors_tell_clients_not_to_retry(channel):
    error = await call_chat(channel, "config")
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert dict(error.trailing_metadata())["x-should-retry"] == "false"


async def test_unexpected_exceptions_are_internal_and_reveal_nothing(channel):
    error = await call_chat(channel, "bug")
    assert error.code() is grpc.StatusCode.INTERNAL
    assert "sk-live" not in error.details() and "bug" not in error.details()


async def test_errors_in_streams_end_the_stream_with_the_status(channel):
    call = router_pb2_grpc.RouterServiceStub(channel).StreamChat(router_pb2.StreamChatRequest(), metadata=AS_GATEWAY)
    first = await call.read()
    assert first.id == "first"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_health_is_serving_until_shutdown_starts(server, channel):
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service="llmagg.router.v1.RouterService"))
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    await server.health.enter_graceful_shutdown()
    response = await stub.Check(health_pb2.HealthCheckRequest(service=""))
    assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_reflection_lists_the_services(channel):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for response in stub.ServerReflectionInfo(requests()):
        names = {s.name for s in response.list_services_response.service}
        break
    assert {"llmagg.router.v1.RouterService", "grpc.health.v1.Health"} <= names


class Dependency:
    """A dependency a readiness check probes; the test decides whether it is up."""

    def __init__(self) -> None:
        self.up = True

    async def probe(self) -> bool:
        if not self.up:
            raise ConnectionError("connection refused")
        return True


async def health_of(channel, *names: str) -> list[int]:
    stub = health_pb2_grpc.HealthStub(channel)
    return [(await stub.Check(health_pb2.HealthCheckRequest(service=name))).status for name in names]


@pytest.fixture
async def guarded():
    """A server with a critical dependency (vault) and an optional one (cache)."""
    vault, cache = Dependency(), Dependency()
    settings = ServiceSettings(
        host="127.0.0.1", port=0, gateway_token=GATEWAY_TOKEN, drain_s=0, grace_s=0.1, readiness_interval_s=0.05
    )
    binding = ServiceBinding(
        "llmagg.router.v1.RouterService", FailingServicer(), router_pb2_grpc.add_RouterServiceServicer_to_server
    )
    checks = [ReadinessCheck("vault", vault.probe), ReadinessCheck("cache", cache.probe, critical=False)]
    server = GrpcServer("test", settings, [binding], readiness=checks)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield server, channel, vault, cache
    await server.stop()


SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
NAMES = ("", "llmagg.router.v1.RouterService", "vault", "cache")


async def test_a_failing_critical_dependency_takes_the_service_out_of_serving(guarded, caplog):
    server, channel, vault, _ = guarded
    assert await health_of(channel, *NAMES) == [SERVING] * 4
    vault.up = False
    assert await server.check_readiness() is False
    assert await health_of(channel, *NAMES) == [NOT_SERVING, NOT_SERVING, NOT_SERVING, SERVING]
    assert "vault is unusable: ConnectionError: connection refused" in caplog.text
    vault.up = True
    assert await server.check_readiness() is True
    assert await health_of(channel, *NAMES) == [SERVING] * 4


async def test_a_failing_optional_dependency_only_reports_itself(guarded):
    server, channel, _, cache = guarded
    cache.up = False
    assert await server.check_readiness() is True
    assert await health_of(channel, *NAMES) == [SERVING, SERVING, SERVING, NOT_SERVING]


async def test_readiness_is_rechecked_on_its_own_while_serving(guarded):
    _, channel, vault, _ = guarded
    vault.up = False
    for _ in range(200):  # the watcher runs every 50 ms; give it up to 10 s on a busy machine
        if (await health_of(channel, ""))[0] == NOT_SERVING:
            break
        await asyncio.sleep(0.05)
    assert await health_of(channel, "") == [NOT_SERVING]


async def test_a_server_whose_dependency_is_down_at_start_starts_not_serving():
    vault = Dependency()
    vault.up = False
    settings = ServiceSettings(host="127.0.0.1", port=0, gateway_token=GATEWAY_TOKEN, drain_s=0, grace_s=0.1)
    server = GrpcServer("test", settings, [], readiness=[ReadinessCheck("vault", vault.probe)])
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            assert await health_of(channel, "", "vault") == [NOT_SERVING, NOT_SERVING]
    finally:
        await server.stop()


async def test_every_rpc_is_counted_by_method_and_status_on_the_metrics_port():
    import urllib.request

    from prometheus_client import CollectorRegistry
    from prometheus_client.parser import text_string_to_metric_families

    from llmagg_devstack import free_port

    settings = ServiceSettings(
        host="127.0.0.1", port=0, gateway_token=GATEWAY_TOKEN, drain_s=0, grace_s=0.1, metrics_port=free_port()
    )
    binding = ServiceBinding(
        "llmagg.router.v1.RouterService", FailingServicer(), router_pb2_grpc.add_RouterServiceServicer_to_server
    )
    server = GrpcServer("test", settings, [binding], registry=CollectorRegistry())
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            for model in ("limited", "limited", "bug"):
                await call_chat(channel, model)
            await health_of(channel, "")  # health checks are not counted
        page = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).read().decode()
            )
        )
    finally:
        await server.stop()
    handled = {
        (s.labels["method"], s.labels["code"]): s.value
        for family in text_string_to_metric_families(page)
        if family.name == "llmagg_grpc_server_handled"
        for s in family.samples
        if s.name.endswith("_total")
    }
    chat = "/llmagg.router.v1.RouterService/Chat"
    assert handled == {(chat, "RESOURCE_EXHAUSTED"): 2.0, (chat, "INTERNAL"): 1.0}


def test_a_service_hands_the_gil_back_to_its_event_loop_within_a_millisecond():
    seen: list[float] = []

    async def main() -> None:
        seen.append(sys.getswitchinterval())

    before = sys.getswitchinterval()
    try:
        run(main())
    finally:
        sys.setswitchinterval(before)
    assert seen == [0.001]
