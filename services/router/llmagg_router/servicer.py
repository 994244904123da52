"""gRPC servicer: translates requests to the domain Router and its results back. No routing logic."""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import grpc
import orjson
from google.api import httpbody_pb2

from llmagg.common.budget import Budget, Holding
from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.grpc_interceptors import CLIENT_ID_METADATA, CLIENT_SCOPE_METADATA, metadata_value
from llmagg.common.secrets import Secret
from llmagg.router.v1 import router_pb2 as pb
from llmagg.router.v1 import router_pb2_grpc
from llmagg_router import converters
from llmagg_router.domain.catalog import routable_models
from llmagg_router.domain.request import NO_HINTS, CallerHints
from llmagg_router.domain.request_record import Route
from llmagg_router.domain.router import Router
from llmagg_router.domain.state import routing_state
from llmagg_router.domain.upstream import Operation
from llmagg_router.memory import MemoryReleaser

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RouterService"].full_name

# A client's own provider key for one request (BYOK); never stored, logged or traced.
OWN_KEY_METADATA = "x-provider-api-key"
SESSION_METADATA = "x-session-id"
MAX_WAIT_METADATA = "x-llmagg-max-wait"
HEDGE_METADATA = "x-llmagg-hedge"
_CALLER_METADATA = (OWN_KEY_METADATA, CLIENT_ID_METADATA, SESSION_METADATA, MAX_WAIT_METADATA, HEDGE_METADATA)
_YES, _NO = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_SSE = "text/event-stream"
_PIECE_BYTES = 256 * 1024
_JSON = "application/json"
DONE_EVENT = b"data: [DONE]\n\n"
_STREAM_INTERNAL_ERROR = {
    "error": {
        "message": "The server had an error while streaming.",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
}


def parse_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            f"We could not parse the JSON body of your request ({exc.args[0]}). The body must be a JSON object.",
            code="invalid_json",
        ) from None


def _caller(context: grpc.aio.ServicerContext) -> tuple[Secret | None, CallerHints]:
    return caller_of(context.invocation_metadata() or ())


def caller_headers(headers: dict[str, str]) -> Iterator[tuple[str, str]]:
    """The headers `caller_of` reads, of a request's (whose other headers it would pass over one by one)."""
    return ((name, headers[name]) for name in _CALLER_METADATA if name in headers)


def caller_of(pairs: Iterable[tuple[str, Any]]) -> tuple[Secret | None, CallerHints]:
    """From a request's metadata (or headers): the client's own provider key (BYOK); who is calling (as
    the gateway says: "" for a direct caller), its session and how long it may wait."""
    own_key, client_id, session, max_wait, hedge = None, "", None, None, None
    for key, value in pairs:
        if not isinstance(value, str) or not value.strip():
            continue
        if key == OWN_KEY_METADATA:
            own_key = Secret(value.strip())
        elif key == CLIENT_ID_METADATA:
            client_id = value
        elif key == SESSION_METADATA:
            session = value.strip()
        elif key == MAX_WAIT_METADATA:
            max_wait = value.strip()
        elif key == HEDGE_METADATA:
            hedge = _switch(value.strip().lower())
    if not (client_id or session or max_wait or hedge is not None):
        return own_key, NO_HINTS
    seconds = _seconds(max_wait) if max_wait else 0.0
    return own_key, CallerHints(client_id=client_id, session=session, max_wait_s=seconds, hedge=hedge)


def _switch(value: str) -> bool:
    if value in _YES or value in _NO:
        return value in _YES
    raise ServiceError(
        ErrorKind.INVALID_ARGUMENT,
        f"`{HEDGE_METADATA}` must be true or false, got {value[:40]!r}.",
        code="invalid_hedge",
        param=HEDGE_METADATA,
    )


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            f"`{MAX_WAIT_METADATA}` must be a number of seconds, got {value[:40]!r}.",
            code="invalid_max_wait",
            param=MAX_WAIT_METADATA,
        )
    return seconds


def _header_value(value: str) -> str:
    """gRPC metadata (and so HTTP headers) must be printable ASCII; model ids passed through need not be."""
    return value if value.isascii() and value.isprintable() else urllib.parse.quote(value, safe="/:@-._~+=,;")


def route_headers(route: Route) -> tuple[tuple[str, str], ...]:
    """Response headers (via Envoy) that say which candidate answered."""
    return (
        ("x-llmagg-provider", route.provider),
        ("x-llmagg-model", _header_value(route.model)),
        ("x-llmagg-account", _header_value(route.account)),
        ("x-llmagg-attempts", str(route.attempts)),
        ("x-llmagg-route-reason", _header_value(route.reason or "model asked")),
    )


def _pieces(body: bytes) -> Iterator[httpbody_pb2.HttpBody]:
    """A JSON answer as messages small enough that the gateway never holds more than a piece of it."""
    for start in range(0, max(len(body), 1), _PIECE_BYTES):
        yield httpbody_pb2.HttpBody(content_type=_JSON, data=body[start : start + _PIECE_BYTES])


def sse_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def sse_events(stream: Any) -> AsyncIterator[bytes]:
    """An opened stream's chunks as SSE events, then `[DONE]`. The client has a 200 already: a failure
    travels in-band, as an OpenAI error event (and ends the events)."""
    try:
        async for chunk in stream:
            yield sse_event(chunk)
    except ServiceError as error:
        yield sse_event(error.openai_error())
        return
    except Exception:
        log.exception("stream failed after it had started")
        yield sse_event(_STREAM_INTERNAL_ERROR)
        return
    yield DONE_EVENT


class RouterServicer(router_pb2_grpc.RouterServiceServicer):
    def __init__(
        self, router: Router, max_inflight_body_bytes: int = 64 * 1024 * 1024, max_body_bytes: int = 32 * 1024 * 1024
    ) -> None:
        self._router = router
        # Request bodies being parsed and routed take several times their size in memory: bound them.
        self._inflight = Budget(max_inflight_body_bytes, "request bytes in flight")
        self._max_body_bytes = max_body_bytes
        self._memory = MemoryReleaser()
        self._created = int(time.time())
        self._catalogue_generation: int | None = None
        self._models = pb.ListModelsResponse()
        self._models_json = httpbody_pb2.HttpBody()
        self._model_json: dict[str, httpbody_pb2.HttpBody] = {}

    @property
    def router(self) -> Router:
        return self._router

    def _catalogue(self) -> tuple[pb.ListModelsResponse, httpbody_pb2.HttpBody, dict[str, httpbody_pb2.HttpBody]]:
        """The model list (typed, JSON, and JSON per model id), rendered again only when the accounts
        (and so the routable providers) changed."""
        resolver = self._router.resolver
        if resolver.generation != self._catalogue_generation:
            entries = routable_models(resolver.routable_providers, resolver.catalog.details)
            chains = sorted(resolver.config.fallback_chains)
            listed = converters.openai_models_json(entries, chains, self._created)
            self._models = converters.models_response(entries, chains)
            self._models_json = httpbody_pb2.HttpBody(content_type=_JSON, data=orjson.dumps(listed))
            self._model_json = {
                model["id"]: httpbody_pb2.HttpBody(content_type=_JSON, data=orjson.dumps(model))
                for model in listed["data"]
            }
            self._catalogue_generation = resolver.generation
        return self._models, self._models_json, self._model_json

    def hold(self, amount: int = 0) -> Holding:
        """Request bytes held in the in-flight budget for a `with` block; freed memory given back after a large
        body."""
        return self._inflight.hold(amount, ended=self._memory.request_ended)

    # --- REST-facing (raw OpenAI JSON through Envoy) ----------------------------------------------
    async def _read_body(self, pieces: AsyncIterator[Any], holding: Holding) -> bytes:
        """The whole request body from its pieces, refused as soon as it is over a limit."""
        received: list[bytes] = []
        size = 0
        async for piece in pieces:
            data = piece.http_body.data
            size += len(data)
            if size > self._max_body_bytes:
                received.clear()  # not kept alive by the error's traceback while it travels
                self._refuse_size()
            holding.add(len(data))
            received.append(data)
        return b"".join(received)

    def _whole_body(self, request: Any, holding: Holding) -> bytes:
        return self.whole_body(request.http_body.data, holding)

    def whole_body(self, data: bytes, holding: Holding) -> bytes:
        """The body of a unary call, refused over the same limit as a streamed one."""
        if len(data) > self._max_body_bytes:
            self._refuse_size()
        holding.add(len(data))
        return data

    def _refuse_size(self) -> None:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            f"The request body is larger than {self._max_body_bytes} bytes.",
            code="request_too_large",
            http_status=413,
        )

    async def CreateChatCompletion(self, requests, context) -> AsyncIterator[httpbody_pb2.HttpBody]:
        own_key, caller = _caller(context)
        with self.hold() as holding:
            body = parse_json(await self._read_body(requests, holding))
            if not (isinstance(body, dict) and body.get("stream") is True):
                result = await self._router.complete(body, own_key=own_key, caller=caller)
                await context.send_initial_metadata(route_headers(result.route))
                for piece in _pieces(orjson.dumps(result.body)):
                    yield piece
                return
            stream = await self._router.open_stream(body, own_key, caller)
            del body  # the stream needs no more of the request
        async for event in self._events(stream, context, holding):
            yield event

    async def ChatJson(self, request: pb.CreateChatCompletionRequest, context) -> httpbody_pb2.HttpBody:
        own_key, caller = _caller(context)
        with self.hold() as holding:
            body = parse_json(self._whole_body(request, holding))
            if isinstance(body, dict) and body.get("stream") is True:
                # The gateway sends here only bodies without a plain `"stream": true`; one that asks for a
                # stream anyway (an escaped key, a direct call) gets the whole stream in one answer.
                stream = await self._router.open_stream(body, own_key, caller)
                del body
            else:
                result = await self._router.complete(body, own_key=own_key, caller=caller)
                await context.send_initial_metadata(route_headers(result.route))
                return httpbody_pb2.HttpBody(content_type=_JSON, data=orjson.dumps(result.body))
        events = [event.data async for event in self._events(stream, context, holding)]
        return httpbody_pb2.HttpBody(content_type=_SSE, data=b"".join(events))

    async def _events(self, stream: Any, context, holding: Holding) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """An opened stream as SSE events: the route's headers first, then every chunk, then `[DONE]`."""
        try:
            await context.send_initial_metadata(route_headers(stream.route))
            async for event in sse_events(stream):
                yield httpbody_pb2.HttpBody(content_type=_SSE, data=event)
        finally:
            await self.stream_ended(stream, holding)

    async def stream_ended(self, stream: Any, holding: Holding) -> None:
        await stream.aclose()
        self._memory.request_ended(holding.amount)  # the stream held the request's text until now

    async def ListModelsJson(self, request, context) -> httpbody_pb2.HttpBody:
        return self._catalogue()[1]

    async def GetModelJson(self, request: pb.GetModelJsonRequest, context) -> httpbody_pb2.HttpBody:
        model = urllib.parse.unquote(request.model)  # the SDK sends `provider/model` as `provider%2Fmodel`
        found = self._catalogue()[2].get(model)
        if found is None and (routes := self._router.resolver.routes_for(model)):
            alias = converters.openai_alias_json(model, routes, self._created)
            return httpbody_pb2.HttpBody(content_type=_JSON, data=orjson.dumps(alias))
        if found is None:
            raise ServiceError(
                ErrorKind.NOT_FOUND,
                f"The model {model!r} does not exist or you do not have access to it. GET /v1/models lists "
                "the models you can route to.",
                code="model_not_found",
                param="model",
            )
        return found

    async def GetRoutingState(self, request, context) -> httpbody_pb2.HttpBody:
        ports = self._router.ports
        state = routing_state(self._router.resolver.routable_providers, ports.keys, ports.health.snapshot())
        if self._router.meta is not None:
            state["meta_controller"] = {"profiles": self._router.meta.scores()}
        return httpbody_pb2.HttpBody(content_type=_JSON, data=orjson.dumps(state))

    async def CreateFeedback(self, request: pb.CreateFeedbackRequest, context) -> httpbody_pb2.HttpBody:
        meta = self._router.meta
        if meta is None:
            raise ServiceError(
                ErrorKind.FAILED_PRECONDITION,
                "Feedback needs the meta-controller, which is off on this router (ROUTER_META_CONTROLLER).",
                code="feedback_disabled",
            )
        _, caller = _caller(context)
        admin = metadata_value(context.invocation_metadata(), CLIENT_SCOPE_METADATA) == "admin"
        taken = await meta.feedback_json(parse_json(request.http_body.data), caller.client_id, admin)
        return httpbody_pb2.HttpBody(content_type=_JSON, data=orjson.dumps(taken))

    async def CreateEmbedding(self, requests, context) -> AsyncIterator[httpbody_pb2.HttpBody]:
        with self.hold() as holding:
            body = parse_json(await self._read_body(requests, holding))
            result = await self._router.complete(body, Operation.EMBEDDINGS, *_caller(context))
        await context.send_initial_metadata(route_headers(result.route))
        for piece in _pieces(orjson.dumps(result.body)):
            yield piece

    async def EmbedJson(self, request: pb.CreateEmbeddingRequest, context) -> httpbody_pb2.HttpBody:
        with self.hold() as holding:
            body = parse_json(self._whole_body(request, holding))
            result = await self._router.complete(body, Operation.EMBEDDINGS, *_caller(context))
        await context.send_initial_metadata(route_headers(result.route))
        return httpbody_pb2.HttpBody(content_type=_JSON, data=orjson.dumps(result.body))

    # --- typed gRPC ------------------------------------------------------------------------------
    async def Chat(self, request: pb.ChatRequest, context) -> pb.ChatResponse:
        with self.hold(request.ByteSize()):
            result = await self._router.complete(
                converters.chat_request_to_body(request), Operation.CHAT, *_caller(context)
            )
        context.set_trailing_metadata(route_headers(result.route))
        return converters.chat_response(result.body, result.route)

    async def StreamChat(self, request: pb.StreamChatRequest, context) -> AsyncIterator[pb.StreamChatResponse]:
        with self.hold(request.ByteSize()):
            stream = await self._router.open_stream(converters.stream_request_to_body(request), *_caller(context))
        try:
            await context.send_initial_metadata(route_headers(stream.route))
            async for chunk in stream:
                yield converters.stream_response(chunk, stream.route)
        finally:
            await stream.aclose()

    async def ListModels(self, request, context) -> pb.ListModelsResponse:
        return self._catalogue()[0]

    async def Embed(self, request: pb.EmbedRequest, context) -> pb.EmbedResponse:
        with self.hold(request.ByteSize()):
            result = await self._router.complete(
                converters.embed_request_to_body(request), Operation.EMBEDDINGS, *_caller(context)
            )
        context.set_trailing_metadata(route_headers(result.route))
        return converters.embed_response(result.body, result.route)


def add_to_server(servicer: RouterServicer, server: grpc.aio.Server) -> None:
    router_pb2_grpc.add_RouterServiceServicer_to_server(servicer, server)
