"""Every hop exports OTLP spans: one trace across the gateway, the router and each fallback attempt."""

from __future__ import annotations

import time
from concurrent import futures

import grpc
import openai
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from llmagg.devstack.processes import free_port
from llmagg.devstack.stack import Ports, Stack
from tests.conftest import ROUTER_TEST_ENV, SIM_KEY

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """A minimal OTLP/gRPC collector that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans = []

    def Export(self, request, context):
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    server.start()
    receiver.endpoint = f"http://127.0.0.1:{port}"
    yield receiver
    server.stop(0)


@pytest.fixture(scope="module")
def traced_stack(receiver, router_config, tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("traced"), Ports.free())
    env = {
        **ROUTER_TEST_ENV,
        "LLMAGG_CONFIG": str(router_config),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    try:
        stack.start_router(env)
        stack.start_gateway()
        yield stack
    finally:
        stack.stop()


def spans_of_trace(receiver, trace_id: str, at_least: int, timeout_s: float = 15):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        spans = [s for s in receiver.spans if s.trace_id.hex() == trace_id]
        if len(spans) >= at_least:
            return spans
        time.sleep(0.1)
    raise AssertionError(f"expected {at_least} spans of trace {trace_id}, got {len(spans)}")


def attributes(span) -> dict:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


def test_a_fallback_is_one_trace_continuing_the_callers_context(traced_stack, receiver):
    client = openai.OpenAI(base_url=traced_stack.base_url, api_key="x", max_retries=0)
    reply = client.chat.completions.create(
        model="fallback-429",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"},
    )
    assert reply.provider == "rl-backup"
    spans = spans_of_trace(receiver, TRACE_ID, at_least=3)
    [server] = [s for s in spans if s.name == "llmagg.router.v1.RouterService/CreateChatCompletion"]
    assert server.parent_span_id.hex() == PARENT_SPAN_ID
    attempts = sorted((s for s in spans if s.name == "router.attempt"), key=lambda s: attributes(s)["llmagg.attempt"])
    assert [attributes(a)["llmagg.provider"] for a in attempts] == ["rl-first", "rl-backup"]
    assert attributes(attempts[0])["llmagg.outcome"] == "failed"
    assert attributes(attempts[0])["llmagg.reason"] == "rate_limited"
    assert attributes(attempts[1])["llmagg.outcome"] == "ok"
    assert attributes(attempts[1])["llmagg.account"] == "rl-backup-acct"
    assert all(a.parent_span_id == server.span_id for a in attempts)


def test_spans_never_carry_key_material(traced_stack, receiver):
    openai.OpenAI(
        base_url=traced_stack.base_url, api_key="sk-client-secret-abcdef", max_retries=0
    ).chat.completions.create(model="chat-model", messages=[{"role": "user", "content": "hi"}])
    time.sleep(0.3)
    dumped = b"".join(s.SerializeToString() for s in receiver.spans)
    assert receiver.spans
    assert SIM_KEY.encode() not in dumped and b"sk-client-secret" not in dumped


def test_health_checks_are_not_traced(traced_stack, receiver):
    time.sleep(1.5)  # Envoy health-checks the router every second
    assert not [s for s in receiver.spans if "Health" in s.name]
