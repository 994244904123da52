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
