"""`/<provider>/v2/chat` in the Cohere v2 format (Bearer key)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from llmagg_simulator import cohere_chat
from llmagg_simulator.cohere_errors import COHERE, error_response, missing_api_key
from llmagg_simulator.delivery import Call, Refused, endpoint, has_bearer_key, provider_state, receive

# The cohere SDK names itself in every request; page_size/page_token/endpoint are its list's own parameters.
_COHERE_LIST_PARAMETERS = frozenset({"page_size", "page_token", "endpoint", "default_only"})


def speaks_cohere(request: web.Request) -> bool:
    """How `GET /v1/models` tells a Cohere client from an OpenAI one (Anthropic ones send anthropic-version)."""
    named = request.headers.get("x-fern-sdk-name", "").lower() == "cohere"
    return named or bool(_COHERE_LIST_PARAMETERS & set(request.query))


def read_models(request: web.Request, body: Any) -> Call:
    """`GET /v1/models`: {models: [{name, endpoints, context_length, features, ...}], next_page_token}."""
    if not has_bearer_key(request):
        raise Refused(missing_api_key())
    models = provider_state(request).models
    return Call(None, lambda: cohere_chat.model_list(models))


list_models = endpoint(COHERE, read_models)


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
