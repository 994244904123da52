"""`/<provider>/v1/...`: the OpenAI API of each simulated provider, bent by its scripted faults."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from llmagg_simulator import openai_chat, openai_embeddings, openai_models
from llmagg_simulator.faults import Fault
from llmagg_simulator.openai_errors import InvalidRequest, error_response, fault_error_response, missing_api_key
from llmagg_simulator.responses import drop_connection, invalid_json, truncated_json
from llmagg_simulator.state import CHUNK_DELAY_S, PROVIDERS, ProviderState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
DONE = b"data: [DONE]\n\n"
MALFORMED_BODY = b'{"id": "chatcmpl-sim-broken", "object": "chat.completion", "choices": [{"mess'
MALFORMED_CHUNK = b'data: {"id": "chatcmpl-sim-broken", "choices": [{"delta": {"cont\n\n'


def _counted_in_flight(handler: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[PROVIDERS].get(request.match_info["provider"])
        state.in_flight += 1
        try:
            return await handler(request)
        finally:
            state.in_flight -= 1

    return handle


async def _receive(request: web.Request) -> tuple[ProviderState, Any]:
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
            "headers": {key.lower(): value for key, value in request.headers.items()},
            "body": body,
        }
    )
    return state, body


def _has_api_key(request: web.Request) -> bool:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


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


async def _answer(
    request: web.Request, fault: Fault, model: str | None, build: Callable[[], dict[str, Any]]
) -> web.StreamResponse:
    """A whole-body JSON answer from `build`, unless the fault replaces or breaks it."""
    if not await _wait_before_answering(request, fault):
        return web.Response(status=504)  # never reaches the client: the connection is already closed
    if (error := fault_error_response(fault, model)) is not None:
        return error
    if fault.type == "malformed_json":
        return invalid_json(MALFORMED_BODY)
    payload = orjson.dumps(build())
    if fault.type == "cut_stream":
        return await truncated_json(request, payload)
    return web.Response(body=payload, content_type="application/json")


async def _stream(request: web.Request, fault: Fault, chunks: list[dict[str, Any]]) -> web.StreamResponse:
    """Server-sent events, one `data:` line per chunk then [DONE]; cut_stream and malformed_json break it."""
    if not await _wait_before_answering(request, fault):
        return web.Response(status=504)
    if (error := fault_error_response(fault, chunks[0]["model"])) is not None:
        return error
    lines = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
    cut_before = len(lines) + 1  # past the end: no cut
    if fault.type == "malformed_json":
        lines[1] = MALFORMED_CHUNK
    elif fault.type == "cut_stream":
        finishing = next(
            i for i, chunk in enumerate(chunks) if chunk["choices"] and chunk["choices"][0]["finish_reason"]
        )
        cut_before = min(1 + fault.after_chunks, finishing)  # the role chunk, N more, never the finishing chunk
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    delay_s = request.app[CHUNK_DELAY_S]
    for index, line in enumerate(lines):
        if delay_s and index:
            await asyncio.sleep(delay_s)
        if index == cut_before:
            drop_connection(request)  # no finishing chunk, no [DONE], no end of the chunked body
            return response
        await response.write(line)
    await response.write(DONE)
    await response.write_eof()
    return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state, body = await _receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    try:
        body = openai_chat.check_request(body)
    except InvalidRequest as invalid:
        return invalid.response()
    provider, fault = request.match_info["provider"], state.next_fault()
    if body.get("stream") is True:
        return await _stream(request, fault, openai_chat.stream_chunks(provider, body))
    return await _answer(request, fault, body["model"], lambda: openai_chat.completion(provider, body))


async def embeddings(request: web.Request) -> web.StreamResponse:
    state, body = await _receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    try:
        openai_embeddings.inputs_of(body)
    except InvalidRequest as invalid:
        return invalid.response()
    return await _answer(request, state.next_fault(), body["model"], lambda: openai_embeddings.embeddings(body))


async def list_models(request: web.Request) -> web.StreamResponse:
    state, _ = await _receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    provider = request.match_info["provider"]
    return await _answer(request, state.next_fault(), None, lambda: openai_models.model_list(provider))


async def retrieve_model(request: web.Request) -> web.StreamResponse:
    state, _ = await _receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    provider, model_id = request.match_info["provider"], request.match_info["model"]
    if model_id not in openai_models.MODEL_IDS:
        return error_response(
            404, f"The model '{model_id}' does not exist", "invalid_request_error", "model_not_found", "model"
        )
    return await _answer(request, state.next_fault(), model_id, lambda: openai_models.model(provider, model_id))


async def unknown_route(request: web.Request) -> web.Response:
    await _receive(request)
    path = "/v1/" + request.match_info["rest"]
    return error_response(404, f"Invalid URL ({request.method} {path})", "invalid_request_error", None)


def add_provider_routes(app: web.Application) -> None:
    app.router.add_post("/{provider}/v1/chat/completions", _counted_in_flight(chat_completions))
    app.router.add_post("/{provider}/v1/embeddings", _counted_in_flight(embeddings))
    app.router.add_get("/{provider}/v1/models", _counted_in_flight(list_models))
    app.router.add_get("/{provider}/v1/models/{model:.+}", _counted_in_flight(retrieve_model))
    app.router.add_route("*", "/{provider}/v1/{rest:.*}", unknown_route)
