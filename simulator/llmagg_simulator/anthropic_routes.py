"""`/<provider>/v1/messages` and the models routes in the Anthropic format (x-api-key, anthropic-version)."""

from __future__ import annotations

from aiohttp import web

from llmagg_simulator import anthropic_messages
from llmagg_simulator.anthropic_errors import (
    MALFORMED_BODY,
    MALFORMED_EVENT,
    STREAM_ERROR_EVENT,
    InvalidRequest,
    error_response,
    fault_error_response,
    missing_api_key,
    missing_version,
    new_request_id,
)
from llmagg_simulator.catalog import MODEL_IDS
from llmagg_simulator.delivery import Dialect, answer, counted_in_flight, receive, stream

ANTHROPIC = Dialect(
    fault_error_response, MALFORMED_BODY, MALFORMED_EVENT, STREAM_ERROR_EVENT, lambda: {"request-id": new_request_id()}
)


def speaks_anthropic(request: web.Request) -> bool:
    """Anthropic clients send anthropic-version with every request: how `GET /v1/models` tells them from OpenAI's."""
    return "anthropic-version" in request.headers


def _refusal(request: web.Request) -> web.Response | None:
    """Anthropic answers a request without a key (x-api-key, or a Bearer token) or without a version with an error."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if not request.headers.get("x-api-key", "").strip() and not (scheme.lower() == "bearer" and token.strip()):
        return missing_api_key()
    if not request.headers.get("anthropic-version", "").strip():
        return missing_version()
    return None


async def messages(request: web.Request) -> web.StreamResponse:
    state, body = await receive(request)
    if (refused := _refusal(request)) is not None:
        return refused
    try:
        body = anthropic_messages.check_request(body)
    except InvalidRequest as invalid:
        return invalid.response()
    provider, fault, model = request.match_info["provider"], state.next_fault(), body["model"]
    if body.get("stream") is True:
        return await stream(request, ANTHROPIC, fault, model, lambda: anthropic_messages.stream_events(provider, body))
    return await answer(request, ANTHROPIC, fault, model, lambda: anthropic_messages.message(provider, body))


async def list_models(request: web.Request) -> web.StreamResponse:
    state, _ = await receive(request)
    if (refused := _refusal(request)) is not None:
        return refused
    try:
        listing = anthropic_messages.model_page(dict(request.query))
    except InvalidRequest as invalid:
        return invalid.response()
    return await answer(request, ANTHROPIC, state.next_fault(), None, lambda: listing)


async def retrieve_model(request: web.Request) -> web.StreamResponse:
    state, _ = await receive(request)
    if (refused := _refusal(request)) is not None:
        return refused
    model_id = request.match_info["model"]
    if model_id not in MODEL_IDS:
        return error_response("not_found_error", f"model: {model_id}")
    return await answer(
        request, ANTHROPIC, state.next_fault(), model_id, lambda: anthropic_messages.model_info(model_id)
    )


def add_routes(app: web.Application) -> None:
    """Before the OpenAI catch-all under /v1/; the models routes are shared with OpenAI (see provider_routes)."""
    app.router.add_post("/{provider}/v1/messages", counted_in_flight(messages))
