"""A call through service_channel continues the caller's trace in the callee's server span."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmagg.common.grpc_client import service_channel
from llmagg.common.grpc_interceptors import TracingInterceptor
from llmagg.router.v1 import router_pb2, router_pb2_grpc


class Models(router_pb2_grpc.RouterServiceServicer):
    async def ListModels(self, request, context):
        return router_pb2.ListModelsResponse()


@pytest.fixture(scope="module")
def exporter():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process: later tests only add spans to it
    return exporter


async def test_the_callee_continues_the_callers_trace(exporter, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")  # tracing on (nothing is exported)
    server = grpc.aio.server(interceptors=[TracingInterceptor("callee")])
    router_pb2_grpc.add_RouterServiceServicer_to_server(Models(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        with trace.get_tracer("test").start_as_current_span("caller") as caller:
            async with service_channel(f"127.0.0.1:{port}") as channel:
                await router_pb2_grpc.RouterServiceStub(channel).ListModels(router_pb2.ListModelsRequest())
    finally:
        await server.stop(0)
    server_spans = [s for s in exporter.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
    client_spans = [s for s in exporter.get_finished_spans() if s.kind is trace.SpanKind.CLIENT]
    assert [s.context.trace_id for s in server_spans] == [caller.get_span_context().trace_id]
    assert server_spans[0].parent.span_id == client_spans[0].context.span_id
    assert client_spans[0].parent.span_id == caller.get_span_context().span_id


def test_every_channel_between_services_is_made_by_service_channel():
    """A channel made any other way carries no trace context (and pings as the servers do not allow)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sources = [*root.glob("services/*/llmagg_*/**/*.py"), *root.glob("libs/llmagg/**/*.py")]
    own = [p for p in sources if "_pb2" not in p.name and p.name != "grpc_client.py"]
    assert len(own) > 50
    assert [str(p.relative_to(root)) for p in own if "insecure_channel(" in p.read_text()] == []


async def test_a_channel_to_several_replicas_spreads_calls_over_all_and_goes_on_without_a_dead_one():
    """The address of a replicated service lists every replica (gRPC's ipv4: list on loopback, a headless
    Service's DNS name in Kubernetes): calls go round all of them, and once one is gone, to the others."""
    counts: list[int] = []
    servers = []
    for index in range(2):

        class Counting(router_pb2_grpc.RouterServiceServicer):
            async def ListModels(self, request, context, index=index):
                counts.append(index)
                return router_pb2.ListModelsResponse()

        server = grpc.aio.server()
        router_pb2_grpc.add_RouterServiceServicer_to_server(Counting(), server)
        servers.append((server, server.add_insecure_port("127.0.0.1:0")))
        await server.start()
    try:
        target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port in servers)
        async with service_channel(target) as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            for _ in range(20):  # until the channel has connected to both (the first calls may find one ready)
                await stub.ListModels(router_pb2.ListModelsRequest(), timeout=5)
                if set(counts) == {0, 1}:
                    break
            counts.clear()
            for _ in range(4):
                await stub.ListModels(router_pb2.ListModelsRequest(), timeout=5)
            assert sorted(counts) == [0, 0, 1, 1]
            await servers[0][0].stop(0)
            counts.clear()
            for _ in range(4):
                await stub.ListModels(router_pb2.ListModelsRequest(), timeout=5, wait_for_ready=True)
            assert counts == [1, 1, 1, 1]
    finally:
        for server, _ in servers:
            await server.stop(0)
