"""`/<provider>/v2/chat` in the Cohere v2 format (Bearer key)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from llmagg_simulator import cohere_chat
from llmagg_simulator.cohere_errors import COHERE, error_response, missing_api_key
from llmagg_simulator.delivery import Call, Refused, endpoint, has_bearer_key, receive


def read_chat(request: web.Request, body: Any) -> Call:
    if not has_bearer_key(request):
        raise Refused(missing_api_key())
    body = cohere_chat.check_request(body)
    provider = request.match_info["provider"]
    streamed = body.get("stream") is True
    return Call(
        body["model"],
        lambda: cohere_chat.chat(provider, body),
        (lambda: cohere_chat.stream_events(provider, body)) if streamed else None,
    )


async def unknown_route(request: web.Request) -> web.Response:
    await receive(request)
    return error_response(404, f"{request.method} /v2/{request.match_info['rest']}: not found")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/{provider}/v2/chat", endpoint(COHERE, read_chat))
    app.router.add_route("*", "/{provider}/v2/{rest:.*}", unknown_route)
