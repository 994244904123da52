"""Channels to the suite's other services: the caller's trace continues in the callee.

With tracing on, every call gets a CLIENT span and carries the W3C trace context in its metadata,
which the callee's TracingInterceptor continues; with tracing off the channel is a plain one.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from opentelemetry import propagate, trace

from llmagg.common.telemetry import tracing_enabled

_tracer = trace.get_tracer("llmagg.grpc_client")


def _with_trace_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    metadata = list(details.metadata or ())
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    metadata.extend(carrier.items())
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, grpc.aio.Metadata(*metadata), details.credentials, details.wait_for_ready
    )


def _span(details: grpc.aio.ClientCallDetails):
    method = details.method.decode() if isinstance(details.method, bytes) else details.method
    service, _, name = method.lstrip("/").partition("/")
    return _tracer.start_as_current_span(
        method.lstrip("/"),
        kind=trace.SpanKind.CLIENT,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        record_exception=False,
    )


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        with _span(client_call_details):
            call = await continuation(_with_trace_context(client_call_details), request)
            await call  # the span lasts until the answer is in
            return call


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        with _span(client_call_details):
            return await continuation(_with_trace_context(client_call_details), request)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        with _span(client_call_details):
            return await continuation(_with_trace_context(client_call_details), request_iterator)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        with _span(client_call_details):
            return await continuation(_with_trace_context(client_call_details), request_iterator)


def service_channel(address: str, options: Sequence[tuple[str, int | str]] = ()) -> grpc.aio.Channel:
    """An insecure (loopback or mesh) channel to another service of the suite, traced when tracing is on."""
    interceptors = [_UnaryUnary(), _UnaryStream(), _StreamUnary(), _StreamStream()] if tracing_enabled() else None
    return grpc.aio.insecure_channel(address, options=list(options), interceptors=interceptors)
