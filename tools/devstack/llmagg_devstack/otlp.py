"""A minimal OTLP/gRPC trace collector on loopback: the tests read the spans it keeps, the benchmark
exports to it so that tracing costs what it costs in production."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class SpanReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span it is sent (or, with `keep=False`, only counts them)."""

    def __init__(self, keep: bool = True) -> None:
        self.spans: list[Any] = []
        self.service_of: dict[bytes, str] = {}  # span id -> the service.name of the process that sent it
        self.received = 0
        self.endpoint = ""
        self._keep = keep

    def Export(self, request, context):
        for resource_spans in request.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), ""
            )
            for scope_spans in resource_spans.scope_spans:
                self.received += len(scope_spans.spans)
                if self._keep:
                    self.spans.extend(scope_spans.spans)
                    self.service_of.update((span.span_id, service) for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def environment(self, schedule_delay_ms: int = 50) -> dict[str, str]:
        """What makes a service export its spans here."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": str(schedule_delay_ms),
        }


@contextlib.contextmanager
def span_receiver(keep: bool = True) -> Iterator[SpanReceiver]:
    """A SpanReceiver listening on a free loopback port while the block runs."""
    receiver = SpanReceiver(keep)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    receiver.endpoint = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        server.stop(0)
