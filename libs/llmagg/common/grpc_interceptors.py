"""Server interceptors: the one place where domain errors become gRPC statuses, and server spans."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry import propagate, trace

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.logging import client_id, request_id
from llmagg.common.metrics import RpcMetrics

log = logging.getLogger(__name__)

STATUS_BY_KIND = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}

# Trailing metadata Envoy turns into response headers; its Lua filter swaps the body for this JSON,
# sets the HTTP status from x-http-status when present, and Envoy's retry policy retries a request
# marked x-llmagg-retry-elsewhere (one the service did not serve) on another replica.
OPENAI_ERROR_METADATA = "x-openai-error"
# Set by the gateway's ext_authz (or "anonymous" with client auth off): who is calling. Stable: usage
# accounting and per-client limits key on it.
CLIENT_ID_METADATA = "x-llmagg-client-id"
# Set by the gateway beside the client id: "admin" or "client" (what the client's key may do).
CLIENT_SCOPE_METADATA = "x-llmagg-client-scope"
# How one service of the suite proves itself to another (a token per pair, made per run); never logged.
SERVICE_TOKEN_METADATA = "x-llmagg-service-token"
HTTP_STATUS_METADATA = "x-http-status"
RETRY_ELSEWHERE_METADATA = "x-llmagg-retry-elsewhere"

_UNTRACED_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def retry_headers(error: ServiceError) -> list[tuple[str, str]]:
    """What an error tells a client (and Envoy) of retrying: when, whether, and on another replica."""
    headers = []
    if error.retry_after_s is not None:
        seconds = max(error.retry_after_s, 0.0)
        headers += [("retry-after", str(math.ceil(seconds))), ("retry-after-ms", str(int(seconds * 1000)))]
    if error.retryable is not None:
        headers.append(("x-should-retry", "true" if error.retryable else "false"))
    if error.retry_elsewhere:
        headers.append((RETRY_ELSEWHERE_METADATA, "true"))  # Envoy retries it on another replica
    return headers


def error_trailers(error: ServiceError) -> tuple[tuple[str, str | bytes], ...]:
    """Trailing metadata for an error: the OpenAI JSON, retry hints and google.rpc.Status details."""
    code = STATUS_BY_KIND[error.kind]
    details = [error_details_pb2.ErrorInfo(reason=error.code, domain="llmagg", metadata={"type": error.error_type})]
    metadata: list[tuple[str, str | bytes]] = [
        # ensure_ascii: gRPC metadata values must be printable ASCII.
        (OPENAI_ERROR_METADATA, json.dumps(error.openai_error(), ensure_ascii=True)),
        *retry_headers(error),
    ]
    if error.retry_after_s is not None:
        seconds = math.ceil(max(error.retry_after_s, 0.0))
        details.append(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)))
    if error.http_status is not None:
        metadata.append((HTTP_STATUS_METADATA, str(error.http_status)))
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=error.grpc_message)
    for detail in details:
        status.details.add().Pack(detail)
    metadata.append(("grpc-status-details-bin", status.SerializeToString()))
    return tuple(metadata)


async def abort_with(context: grpc.aio.ServicerContext, error: ServiceError) -> None:
    await context.abort(STATUS_BY_KIND[error.kind], error.grpc_message, trailing_metadata=error_trailers(error))


_INTERNAL_ERROR = ServiceError(
    ErrorKind.INTERNAL, "The server had an error while processing your request.", code="internal_error"
)


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    unary: Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]],
    streaming: Callable[[Callable[..., AsyncIterator[Any]]], Callable[..., AsyncIterator[Any]]],
) -> grpc.RpcMethodHandler:
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer
        )
    return grpc.stream_stream_rpc_method_handler(
        streaming(handler.stream_stream), handler.request_deserializer, handler.response_serializer
    )


def metadata_value(metadata, name: str) -> str | None:
    """The first value of `name` in gRPC metadata (None when absent or binary)."""
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else None
    return None


def _metadata_value(handler_call_details, name: str) -> str | None:
    return metadata_value(handler_call_details.invocation_metadata, name)


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Turns ServiceError into its status; any other exception into a bare INTERNAL (no details).

    Also binds the gateway's x-request-id and x-llmagg-client-id to the RPC's log lines, and counts every
    RPC by its status (health and reflection excepted) in `metrics`.
    """

    def __init__(self, metrics: RpcMetrics | None = None) -> None:
        self._metrics = metrics

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        rid = _metadata_value(handler_call_details, "x-request-id")
        client = _metadata_value(handler_call_details, CLIENT_ID_METADATA)
        metrics = None if method.startswith(_UNTRACED_PREFIXES) else self._metrics

        def as_service_error(exc: Exception) -> ServiceError:
            if isinstance(exc, ServiceError):
                return exc
            log.exception("unhandled error in %s", method)
            return _INTERNAL_ERROR

        def unary(behaviour):
            async def run(request, context):
                request_id.set(rid)
                client_id.set(client)
                started, code = time.perf_counter(), grpc.StatusCode.OK
                try:
                    return await behaviour(request, context)
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:
                    if context.done() or isinstance(exc, grpc.aio.AbortError):
                        code = context.code() or grpc.StatusCode.UNKNOWN
                        raise
                    error = as_service_error(exc)
                    code = STATUS_BY_KIND[error.kind]
                    await abort_with(context, error)
                finally:
                    if metrics is not None:
                        metrics.observe(method, code, time.perf_counter() - started)

            return run

        def streaming(behaviour):
            async def run(request, context):
                request_id.set(rid)
                client_id.set(client)
                started, code = time.perf_counter(), grpc.StatusCode.OK
                try:
                    async for response in behaviour(request, context):
                        yield response
                except (asyncio.CancelledError, GeneratorExit):
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:
                    if context.done() or isinstance(exc, grpc.aio.AbortError):
                        code = context.code() or grpc.StatusCode.UNKNOWN
                        raise
                    error = as_service_error(exc)
                    code = STATUS_BY_KIND[error.kind]
                    await abort_with(context, error)
                finally:
                    if metrics is not None:
                        metrics.observe(method, code, time.perf_counter() - started)

            return run

        return wrap_handler(handler, unary, streaming)


class _MetadataGetter:
    def get(self, carrier, key):
        values = [v for k, v in carrier if k == key]
        return values or None

    def keys(self, carrier):
        return [k for k, _ in carrier]


class TracingInterceptor(grpc.aio.ServerInterceptor):
    """A SERVER span per RPC, continuing the caller's W3C trace context; health/reflection skipped."""

    def __init__(self, service: str) -> None:
        self._tracer = trace.get_tracer(f"llmagg.{service}")
        self._getter = _MetadataGetter()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(_UNTRACED_PREFIXES):
            return handler
        parent = propagate.extract(handler_call_details.invocation_metadata or (), getter=self._getter)
        service, _, name = method.lstrip("/").partition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        client = _metadata_value(handler_call_details, CLIENT_ID_METADATA)
        if client:
            attributes["llmagg.client_id"] = client

        def span():
            # Exceptions are not recorded: their text can quote an upstream; the status says enough.
            return self._tracer.start_as_current_span(
                method.lstrip("/"),
                context=parent,
                kind=trace.SpanKind.SERVER,
                attributes=attributes,
                record_exception=False,
            )

        def unary(behaviour):
            async def run(request, context):
                with span():
                    return await behaviour(request, context)

            return run

        def streaming(behaviour):
            async def run(request, context):
                with span():
                    async for response in behaviour(request, context):
                        yield response

            return run

        return wrap_handler(handler, unary, streaming)
