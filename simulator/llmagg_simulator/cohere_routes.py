"""`/<provider>/v2/chat` in the Cohere v2 format (Bearer key)."""

from __future__ import annotations

from aiohttp import web

from llmagg_simulator import cohere_chat
from llmagg_simulator.cohere_errors import (
    MALFORMED_BODY,
    MALFORMED_EVENT,
    STREAM_ERROR_EVENT,
    InvalidRequest,
    error_response,
    fault_error_response,
    missing_api_key,
)
from llmagg_simulator.delivery import Dialect, answer, counted_in_flight, receive, stream

COHERE = Dialect(fault_error_response, MALFORMED_BODY, MALFORMED_EVENT, STREAM_ERROR_EVENT)


def _has_api_key(request: web.Request) -> bool:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


async def chat(request: web.Request) -> web.StreamResponse:
    state, body = await receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    try:
        body = cohere_chat.check_request(body)
    except InvalidRequest as invalid:
        return invalid.response()
    provider, fault, model = request.match_info["provider"], state.next_fault(), body["model"]
    if body.get("stream") is True:
        return await stream(request, COHERE, fault, model, lambda: cohere_chat.stream_events(provider, body))
    return await answer(request, COHERE, fault, model, lambda: cohere_chat.chat(provider, body))


async def unknown_route(request: web.Request) -> web.Response:
    await receive(request)
    return error_response(404, f"{request.method} /v2/{request.match_info['rest']}: not found")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/{provider}/v2/chat", counted_in_flight(chat))
    app.router.add_route("*", "/{provider}/v2/{rest:.*}", unknown_route)
