"""The router's REST data path (ROUTER_HTTP_PORT): the gateway proxies POST /v1/chat/completions and
POST /v1/embeddings here as plain HTTP/1.1 (llmagg.common.http_server) instead of transcoding them to
gRPC, the one per-request hop of the suite that costs most. Translates like the gRPC servicer (whose
body limits, in-flight budget and caller hints it shares) and answers what the gateway would have made
of the gRPC answer: the OpenAI JSON or SSE, the route's x-llmagg-* headers, errors as OpenAI error JSON
with their HTTP status and retry headers.

Like the gRPC port it answers the gateway's service token only, counts each request in the RPC metrics
(method = the path) and opens a SERVER span continuing the gateway's trace context.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc
import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace

from llmagg.common.caller_auth import GATEWAY, REFUSED, CallerTokens, calling_peer
from llmagg.common.errors import HTTP_STATUS_BY_KIND, ErrorKind, ServiceError
from llmagg.common.grpc_interceptors import CLIENT_ID_METADATA, SERVICE_TOKEN_METADATA, STATUS_BY_KIND, retry_headers
from llmagg.common.http_server import HttpServer, Request, Response
from llmagg.common.logging import client_id, log_fields, request_id
from llmagg.common.metrics import RpcMetrics
from llmagg.common.secrets import Secret
from llmagg.common.server import GrpcServer
from llmagg.common.telemetry import extract
from llmagg.rpcs import DATA_REST_PATHS, EMBEDDINGS_REST_PATH
from llmagg_router.domain.after_answer import AfterAnswer
from llmagg_router.domain.upstream import Operation
from llmagg_router.servicer import RouterServicer, caller_headers, caller_of, parse_json, route_headers, sse_events

log = logging.getLogger(__name__)

_JSON = ("content-type", "application/json")
_SSE = ("content-type", "text/event-stream")
_INTERNAL = ServiceError(
    ErrorKind.INTERNAL, "The server had an error while processing your request.", code="internal_error"
)


def error_body(status: int, message: str) -> bytes:
    """A request refused before it was read whole (malformed, too large), as OpenAI's error JSON."""
    code = {413: "request_too_large", 431: "request_header_fields_too_large"}.get(status, "invalid_request")
    kind = ErrorKind.INVALID_ARGUMENT if status < 500 else ErrorKind.INTERNAL
    return orjson.dumps(ServiceError(kind, message, code=code, http_status=status).openai_error())


def error_response(error: ServiceError) -> Response:
    status = error.http_status or HTTP_STATUS_BY_KIND[error.kind]
    return Response(status, [_JSON, *retry_headers(error)], orjson.dumps(error.openai_error()))


class RouterHttp:
    def __init__(
        self,
        servicer: RouterServicer,
        tokens: Mapping[str, Secret],
        metrics: RpcMetrics | None = None,
        tracing: bool = False,
    ) -> None:
        self._servicer = servicer
        self._router = servicer.router
        self._callers = CallerTokens(tokens)
        self._metrics = metrics
        self._tracer = trace.get_tracer("llmagg.router") if tracing else None

    def admit(self, head: Request) -> Response | None:
        """A refusal for a request its head already rules out, before its body is read: no gateway token
        (only the gateway proxies here; peers use the gRPC port), another path or method."""
        if self._callers.caller(head.headers.get(SERVICE_TOKEN_METADATA)) != GATEWAY:
            return error_response(REFUSED)
        return self._unserved(head)

    def _unserved(self, request: Request) -> Response | None:
        if request.path not in DATA_REST_PATHS:
            return error_response(
                ServiceError(
                    ErrorKind.NOT_FOUND, f"No route for {request.path[:100]!r} on this port.", code="unknown_url"
                )
            )
        if request.method != "POST":
            return error_response(
                ServiceError(
                    ErrorKind.INVALID_ARGUMENT, "Only POST is served here.", code="method_not_allowed", http_status=405
                )
            )
        return None

    async def handle(self, request: Request) -> Response:
        """A request `admit` let in."""
        headers = request.headers
        calling_peer.set(GATEWAY)
        request_id.set(headers.get("x-request-id"))
        client_id.set(headers.get(CLIENT_ID_METADATA))
        started, code = time.perf_counter(), grpc.StatusCode.OK
        span, token = self._start_span(request) if self._tracer is not None else (None, None)
        after = AfterAnswer()  # what only records the answer: run once it is written
        try:
            response = await self._answer(request, after)
        except asyncio.CancelledError:
            after.run()
            self._finish(request.path, grpc.StatusCode.CANCELLED, started, span, token, 499)
            raise
        except ServiceError as error:
            code, response = STATUS_BY_KIND[error.kind], error_response(error)
        except Exception:
            log.exception("unhandled error in %s", request.path)
            code, response = grpc.StatusCode.INTERNAL, error_response(_INTERNAL)
        if isinstance(response.stream, _Events):  # counted, and its span ended, when the stream ends
            response.stream.ended = lambda whole: self._finish(
                request.path, code if whole else grpc.StatusCode.CANCELLED, started, span, token, response.status
            )
        else:
            response.after = lambda: self._answered(after, request.path, code, started, span, token, response.status)
        return response

    def _answered(
        self,
        after: AfterAnswer,
        path: str,
        code: grpc.StatusCode,
        started: float,
        span: trace.Span | None,
        token: object,
        status: int,
    ) -> None:
        after.run()
        self._finish(path, code, started, span, token, status)

    def _start_span(self, request: Request) -> tuple[trace.Span, object]:
        assert self._tracer is not None
        attributes = {"http.request.method": request.method, "url.path": request.path}
        if request.headers.get(CLIENT_ID_METADATA):
            attributes["llmagg.client_id"] = request.headers[CLIENT_ID_METADATA]
        # Exceptions are not recorded: their text can quote an upstream; the status says enough.
        span = self._tracer.start_span(
            f"{request.method} {request.path}",
            context=extract(request.headers),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
        )
        return span, otel_context.attach(trace.set_span_in_context(span))

    def _finish(
        self, path: str, code: grpc.StatusCode, started: float, span: trace.Span | None, token: object, status: int
    ) -> None:
        if self._metrics is not None:
            self._metrics.observe(path, code, time.perf_counter() - started)
        if span is not None:
            span.set_attribute("http.response.status_code", status)
            if code != grpc.StatusCode.OK:
                span.set_status(trace.StatusCode.ERROR)
            span.end()
            otel_context.detach(token)

    async def _answer(self, request: Request, after: AfterAnswer) -> Response:
        own_key, caller = caller_of(caller_headers(request.headers))
        servicer = self._servicer
        with servicer.hold() as holding:
            body = parse_json(servicer.whole_body(request.body, holding))
            request.body = b""  # parsed: not kept alive while the answer is awaited
            if request.path == EMBEDDINGS_REST_PATH:
                result = await self._router.complete(body, Operation.EMBEDDINGS, own_key, caller, after)
            elif not (isinstance(body, dict) and body.get("stream") is True):
                result = await self._router.complete(body, own_key=own_key, caller=caller, after=after)
            else:
                stream = await self._router.open_stream(body, own_key, caller, after)
                del body  # the stream needs no more of the request
                headers = [_SSE, *route_headers(stream.route)]
                return Response(200, headers, stream=_Events(self._servicer, stream, holding, after))
        return Response(200, [_JSON, *route_headers(result.route)], orjson.dumps(result.body))


class _Events:
    """An opened stream's SSE events; closing it ends the stream (closes the upstream, settles, frees the
    request's budget) even when not one event was taken (the client went away first). `after` runs once the
    first event is written (the server asks for the next one only then), or when the stream ends first."""

    def __init__(self, servicer: RouterServicer, stream: Any, holding: Any, after: AfterAnswer) -> None:
        self._servicer, self._stream, self._holding = servicer, stream, holding
        self._events = sse_events(stream)
        self._ended = self._whole = False
        self._after: AfterAnswer | None = after
        self._taken = False  # an event was handed out
        self.ended: Callable[[bool], None] | None = None  # told once the stream has ended: whole, or cut

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._taken:
            self._run_after()  # the first event is written: the server asks for the next one only then
        try:
            event = await self._events.__anext__()
        except StopAsyncIteration:
            self._whole = True
            raise
        self._taken = True
        return event

    def _run_after(self) -> None:
        after, self._after = self._after, None
        if after is not None:
            after.run()

    async def aclose(self) -> None:
        if not self._ended:
            self._ended = True
            self._run_after()
            try:
                await self._events.aclose()
                await self._servicer.stream_ended(self._stream, self._holding)
            finally:
                if self.ended is not None:
                    self.ended(self._whole)


class RouterHttpPort:
    """The data port as a companion of the router's gRPC server (llmagg.common.server): on ROUTER_HTTP_PORT,
    shared by the router's workers like the gRPC port."""

    def __init__(self, servicer: RouterServicer, port: int, max_body_bytes: int) -> None:
        self._servicer = servicer
        self._port = port
        self._max_body_bytes = max_body_bytes
        self._server: HttpServer | None = None
        self.port = 0

    async def start(self, grpc_server: GrpcServer) -> None:
        handler = RouterHttp(
            self._servicer, grpc_server.caller_tokens, grpc_server.rpc_metrics, tracing=grpc_server.tracing
        )
        self._server = HttpServer(handler.handle, error_body, self._max_body_bytes, admit=handler.admit)
        host = grpc_server.settings.host
        self.port = await self._server.start(host, self._port, reuse_port=grpc_server.reuse_port)
        log.info("router's REST data path on %s:%d", host, self.port, extra=log_fields(http_port=self.port))

    async def stop(self, grace_s: float) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
