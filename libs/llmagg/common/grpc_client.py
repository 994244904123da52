"""Channels to the suite's other services: every one is made by `service_channel`.

With tracing on, every call gets a CLIENT span and carries the W3C trace context in its metadata,
which the callee's TracingInterceptor continues. Keepalive pings keep long streams (WatchCatalog)
alive through idle spells; `keepalive_policy` is what every server of the suite (llmagg.common.server)
accepts, so the two never disagree (a server that thinks a client pings too often drops the connection
with GOAWAY too_many_pings).

An address may name several replicas (a headless Service's DNS name, or gRPC's `ipv4:HOST:PORT,HOST:PORT`):
calls go round all of them (round_robin; gRPC's default would pin every call to the first), and a replica
that is gone is left out until it is back.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from opentelemetry import propagate, trace

from llmagg.common.telemetry import tracing_enabled

# How often a channel pings its server when nothing else is sent (and how often a server lets it).
KEEPALIVE_S = 30.0

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


def keepalive_options(every_s: float = KEEPALIVE_S) -> list[tuple[str, int]]:
    """A client's pings: every `every_s` while idle, with or without calls, for as long as it is open."""
    return [
        ("grpc.keepalive_time_ms", int(every_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(max(every_s, 10.0) * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),  # no cap: a quiet stream keeps being pinged
    ]


def keepalive_policy(every_s: float = KEEPALIVE_S) -> list[tuple[str, int]]:
    """What a server accepts: the pings of `keepalive_options(every_s)`, with margin for timers firing early."""
    return [
        ("grpc.keepalive_permit_without_calls", 1),
        # GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS (the name says "recv", the key does not)
        ("grpc.http2.min_ping_interval_without_data_ms", int(every_s * 1000) // 2),
        ("grpc.http2.max_ping_strikes", 2),
    ]


def service_channel(
    address: str, options: Sequence[tuple[str, int | str]] = (), keepalive_s: float = KEEPALIVE_S
) -> grpc.aio.Channel:
    """An insecure (loopback or mesh) channel to another service of the suite, traced when tracing is on,
    pinging as every server of the suite allows."""
    interceptors = [_UnaryUnary(), _UnaryStream(), _StreamUnary(), _StreamStream()] if tracing_enabled() else None
    return grpc.aio.insecure_channel(
        address,
        options=[("grpc.lb_policy_name", "round_robin"), *keepalive_options(keepalive_s), *options],
        interceptors=interceptors,
    )
