"""`/<provider>/v1/...` in the OpenAI format: chat completions, embeddings, models."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from llmagg_simulator import openai_chat, openai_embeddings, openai_models
from llmagg_simulator.catalog import MODEL_IDS
from llmagg_simulator.delivery import Dialect, EventStream, answer, counted_in_flight, receive, sse, stream
from llmagg_simulator.openai_errors import (
    MALFORMED_BODY,
    MALFORMED_CHUNK,
    STREAM_ERROR_CHUNK,
    InvalidRequest,
    error_response,
    fault_error_response,
    missing_api_key,
)

OPENAI = Dialect(fault_error_response, MALFORMED_BODY, MALFORMED_CHUNK, STREAM_ERROR_CHUNK)
DONE = b"data: [DONE]\n\n"


def _has_api_key(request: web.Request) -> bool:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


def _event_stream(chunks: list[dict[str, Any]]) -> EventStream:
    """The role chunk opens the stream; the chunk with finish_reason finishes it; [DONE] closes it."""
    finishing = next(i for i, chunk in enumerate(chunks) if chunk["choices"] and chunk["choices"][0]["finish_reason"])
    return EventStream([sse(chunk) for chunk in chunks], opening=1, finishing=finishing, closing=DONE)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state, body = await receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    try:
        body = openai_chat.check_request(body)
    except InvalidRequest as invalid:
        return invalid.response()
    provider, fault, model = request.match_info["provider"], state.next_fault(), body["model"]
    if body.get("stream") is True:
        return await stream(
            request, OPENAI, fault, model, lambda: _event_stream(openai_chat.stream_chunks(provider, body))
        )
    return await answer(request, OPENAI, fault, model, lambda: openai_chat.completion(provider, body))


async def embeddings(request: web.Request) -> web.StreamResponse:
    state, body = await receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    try:
        openai_embeddings.inputs_of(body)
    except InvalidRequest as invalid:
        return invalid.response()
    return await answer(request, OPENAI, state.next_fault(), body["model"], lambda: openai_embeddings.embeddings(body))


async def list_models(request: web.Request) -> web.StreamResponse:
    state, _ = await receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    provider = request.match_info["provider"]
    return await answer(request, OPENAI, state.next_fault(), None, lambda: openai_models.model_list(provider))


async def retrieve_model(request: web.Request) -> web.StreamResponse:
    state, _ = await receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    provider, model_id = request.match_info["provider"], request.match_info["model"]
    if model_id not in MODEL_IDS:
        return error_response(
            404, f"The model '{model_id}' does not exist", "invalid_request_error", "model_not_found", "model"
        )
    return await answer(request, OPENAI, state.next_fault(), model_id, lambda: openai_models.model(provider, model_id))


async def unknown_route(request: web.Request) -> web.Response:
    await receive(request)
    path = "/v1/" + request.match_info["rest"]
    return error_response(404, f"Invalid URL ({request.method} {path})", "invalid_request_error", None)


def add_routes(app: web.Application) -> None:
    """Chat and embeddings; the models routes are shared with Anthropic (see provider_routes)."""
    app.router.add_post("/{provider}/v1/chat/completions", counted_in_flight(chat_completions))
    app.router.add_post("/{provider}/v1/embeddings", counted_in_flight(embeddings))


def add_catch_all(app: web.Application) -> None:
    app.router.add_route("*", "/{provider}/v1/{rest:.*}", unknown_route)
