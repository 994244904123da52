"""How every dialect serves a request: the request log, refusals, then the fault (waits, errors, broken answers).

A dialect brings its own shapes (a `Dialect`: its error answers, its broken bodies), reads each request into a
`Call` (or refuses it) and encodes its own events (an `EventStream`); the faults act the same on all of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from llmagg_simulator.catalog import MODEL_IDS
from llmagg_simulator.faults import Fault, ScriptedAnswer
from llmagg_simulator.replies import ECHOED_KEY
from llmagg_simulator.responses import drop_connection, invalid_json, truncated_json
from llmagg_simulator.state import CHUNK_DELAY_S, PROVIDERS, ProviderState
from llmagg_simulator.validation import BadRequest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
SCRIPTED_ANSWER_REFUSED = "the simulator scripts answers (an `answer` fault) for OpenAI chat completions only"


@dataclass(frozen=True)
class Dialect:
    """What a wire format answers to a bad body, and when a fault breaks the answer."""

    bad_request: Callable[[BadRequest], web.Response]  # the 400 for a body the provider would not take
    fault_error: Callable[[Fault, str | None], web.Response | None]  # the error standing in for the answer, if any
    malformed_body: bytes  # a 200 JSON body that does not parse
    malformed_event: bytes  # a stream event whose JSON does not parse
    stream_error_event: bytes  # how the stream reports a failure after it has started
    headers: Callable[[], dict[str, str]] = dict  # sent with every answer (e.g. a request id)


@dataclass
class EventStream:
    """A streamed answer, already encoded: the events in order and where the content sits among them."""

    events: list[bytes]
    opening: int  # events before the first content event (role chunk, message_start, ...)
    finishing: int  # the first event that completes the answer: a cut never delivers it
    closing: bytes = b""  # after the last event of a whole stream (OpenAI's `data: [DONE]`)


@dataclass(frozen=True)
class Call:
    """A request once read: the model it names, its whole answer, and its stream when it asks for one.

    `scripted` makes the same call answer with a scripted reply instead (an `answer` fault); routes without it
    refuse such a fault with a 400.
    """

    model: str | None
    whole: Callable[[], dict[str, Any]]
    events: Callable[[], EventStream] | None = None
    scripted: Callable[[ScriptedAnswer], Call] | None = None


class Refused(Exception):
    """Raised while reading a request that is answered with `response` before any fault applies (no key, ...)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def known_model(
    model_id: str,
    describe: Callable[[str], dict[str, Any]],
    not_found: Callable[[], web.Response],
    known: Collection[str] = MODEL_IDS,
) -> Call:
    """A request for one model of the catalog: its description, or the dialect's 404 for a model it does not have."""
    if model_id not in known:
        raise Refused(not_found())
    return Call(model_id, lambda: describe(model_id))


def provider_state(request: web.Request) -> ProviderState:
    return request.app[PROVIDERS].get(request.match_info["provider"])


def has_bearer_key(request: web.Request) -> bool:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


def sse(data: Any, event: str | None = None, end: bytes = b"\n\n") -> bytes:
    """One server-sent event: an optional `event:` line, then `data:` with the JSON."""
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + end


def endpoint(dialect: Dialect, read: Callable[[web.Request, Any], Call]) -> Handler:
    """A route: log the request, `read` it (refusals use up no fault), then answer it under the next fault."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state, body = await receive(request)
        try:
            call = read(request, body)
        except Refused as refused:
            return refused.response
        except BadRequest as bad:
            return dialect.bad_request(bad)
        fault = state.fault_for(call.model)
        if fault.answer is not None:
            if call.scripted is None:
                return dialect.bad_request(BadRequest(SCRIPTED_ANSWER_REFUSED))
            call = call.scripted(fault.answer)
        if fault.type == "echo_key":
            call = _echoing(call, received_key(request))
        if call.events is not None:
            return await _stream(request, dialect, fault, call.model, call.events)
        return await _answer(request, dialect, fault, call.model, call.whole)

    return counted_in_flight(handle)


def received_key(request: web.Request) -> str:
    """The key a request came with, in whichever auth style it was sent."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "token") and key.strip():
        return key.strip()
    for name in ("x-api-key", "x-goog-api-key"):
        if request.headers.get(name, "").strip():
            return request.headers[name].strip()
    return request.query.get("key", "")


def _with_key(answer: dict[str, Any], key: str) -> dict[str, Any]:
    """An answer object that also quotes `key`: in a field of its own, and in its id and model (which clients see)."""
    for name in ("id", "model"):
        if isinstance(answer.get(name), str):
            answer[name] = f"{answer[name]}-{key}"
    answer["echoed_key"] = key
    return answer


def _with_key_in_event(event: bytes, key: str) -> bytes:
    """An encoded event whose `data:` object also quotes `key`."""
    head, separator, rest = event.partition(b"data: ")
    data, newline, end = rest.partition(b"\n")
    parsed = orjson.loads(data)
    if not isinstance(parsed, dict):
        return event
    return head + separator + orjson.dumps(_with_key(parsed, key)) + newline + end


def _echoing(call: Call, key: str) -> Call:
    """`call` answered by a model that quotes `key` (an `echo_key` fault): in its text (cut in two across events
    when streamed), its tool calls' arguments, and an extra field, id and model of the answer and of every event."""

    def whole() -> dict[str, Any]:
        token = ECHOED_KEY.set(key)
        try:
            return _with_key(call.whole(), key)
        finally:
            ECHOED_KEY.reset(token)

    def events() -> EventStream:
        assert call.events is not None
        token = ECHOED_KEY.set(key)
        try:
            built = call.events()
        finally:
            ECHOED_KEY.reset(token)
        return dataclasses.replace(built, events=[_with_key_in_event(event, key) for event in built.events])

    return Call(call.model, whole, events if call.events is not None else None)


def counted_in_flight(handler: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[PROVIDERS].get(request.match_info["provider"])
        state.in_flight += 1
        try:
            return await handler(request)
        finally:
            state.in_flight -= 1

    return handle


async def receive(request: web.Request) -> tuple[ProviderState, Any]:
    """Log the request in its provider's request log; the provider's state and the body parsed (None if not JSON)."""
    providers = request.app[PROVIDERS]
    state = providers.get(request.match_info["provider"])
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    state.requests.append(
        {
            "seq": providers.next_seq(),
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": {key.lower(): value for key, value in request.headers.items()},
            "body": body,
        }
    )
    return state, body


async def _wait_before_answering(request: web.Request, fault: Fault) -> bool:
    """Sleep as slow_first_byte or hang ask; False when the request must go unanswered (a hang ran out).

    A client that disconnects meanwhile ends the wait: the server cancels handlers of lost connections.
    """
    if fault.type == "slow_first_byte":
        await asyncio.sleep(fault.delay_s)
    elif fault.type == "hang":
        await asyncio.sleep(fault.max_hang_s)
        drop_connection(request)
        return False
    return True


def _with_headers(response: web.StreamResponse, dialect: Dialect) -> web.StreamResponse:
    for name, value in dialect.headers().items():
        response.headers.setdefault(name, value)  # an error answer may have set its own (its request id)
    return response


async def _answer(
    request: web.Request, dialect: Dialect, fault: Fault, model: str | None, build: Callable[[], dict[str, Any]]
) -> web.StreamResponse:
    """A whole-body JSON answer from `build`, unless the fault replaces or breaks it."""
    if not await _wait_before_answering(request, fault):
        return web.Response(status=504)  # never reaches the client: the connection is already closed
    if fault.type == "stream_error":  # only a stream can fail once started; a whole answer fails as a 503 would
        fault = dataclasses.replace(fault, type="503")
    if (error := dialect.fault_error(fault, model)) is not None:
        return _with_headers(error, dialect)
    if fault.type == "malformed_json":
        return _with_headers(invalid_json(dialect.malformed_body), dialect)
    payload = orjson.dumps(build())
    if fault.type == "cut_stream":
        return await truncated_json(request, payload, dialect.headers())
    return _with_headers(web.Response(body=payload, content_type="application/json"), dialect)


async def _stream(
    request: web.Request, dialect: Dialect, fault: Fault, model: str | None, build: Callable[[], EventStream]
) -> web.StreamResponse:
    """The events of `build` one by one; cut_stream, stream_error and malformed_json break the stream."""
    if not await _wait_before_answering(request, fault):
        return web.Response(status=504)
    if (error := dialect.fault_error(fault, model)) is not None:
        return _with_headers(error, dialect)
    built = build()
    events = list(built.events)
    # Where a broken stream stops: after the opening events and N content events, never at the finishing one.
    stop_at = min(built.opening + fault.after_chunks, built.finishing)
    if fault.type == "malformed_json":
        events[built.opening] = dialect.malformed_event
    response = web.StreamResponse(headers=SSE_HEADERS)
    await _with_headers(response, dialect).prepare(request)
    delay_s = request.app[CHUNK_DELAY_S]
    for index, event in enumerate(events):
        if delay_s and index:
            await asyncio.sleep(delay_s)
        if index == stop_at and fault.type == "cut_stream":
            drop_connection(request)  # no finishing event, no clean end of the chunked body
            return response
        if index == stop_at and fault.type == "stream_error":
            await response.write(dialect.stream_error_event)
            await response.write_eof()
            return response
        await response.write(event)
    if built.closing:
        await response.write(built.closing)
    await response.write_eof()
    return response
