"""`/<provider>/v1/messages` and the models routes in the Anthropic format (x-api-key, anthropic-version)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from llmagg_simulator import anthropic_messages
from llmagg_simulator.anthropic_errors import ANTHROPIC, error_response, missing_api_key, missing_version
from llmagg_simulator.delivery import Call, Refused, endpoint, has_bearer_key, known_model, provider_state


def speaks_anthropic(request: web.Request) -> bool:
    """Anthropic clients send anthropic-version with every request: how `GET /v1/models` tells them from OpenAI's."""
    return "anthropic-version" in request.headers


def _require_key_and_version(request: web.Request) -> None:
    """A key in x-api-key or as a Bearer token (what the 2.x SDK sends), and anthropic-version."""
    if not request.headers.get("x-api-key", "").strip() and not has_bearer_key(request):
        raise Refused(missing_api_key())
    if not request.headers.get("anthropic-version", "").strip():
        raise Refused(missing_version())


def read_messages(request: web.Request, body: Any) -> Call:
    _require_key_and_version(request)
    body = anthropic_messages.check_request(body)
    provider = request.match_info["provider"]
    streamed = body.get("stream") is True
    return Call(
        body["model"],
        lambda: anthropic_messages.message(provider, body),
        (lambda: anthropic_messages.stream_events(provider, body)) if streamed else None,
    )


def read_models(request: web.Request, body: Any) -> Call:
    _require_key_and_version(request)
    listing = anthropic_messages.model_page(dict(request.query), provider_state(request).models)
    return Call(None, lambda: listing)


def read_model(request: web.Request, body: Any) -> Call:
    _require_key_and_version(request)
    model_id = request.match_info["model"]
    models = provider_state(request).models
    return known_model(
        model_id,
        lambda known: anthropic_messages.model_info(known, models),
        lambda: error_response("not_found_error", f"model: {model_id}"),
        [model.id for model in models],
    )


list_models = endpoint(ANTHROPIC, read_models)
retrieve_model = endpoint(ANTHROPIC, read_model)


def add_routes(app: web.Application) -> None:
    """Before the OpenAI catch-all under /v1/; the models routes are shared with OpenAI (see provider_routes)."""
    app.router.add_post("/{provider}/v1/messages", endpoint(ANTHROPIC, read_messages))
