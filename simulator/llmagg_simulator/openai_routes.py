"""`/<provider>/v1/...` in the OpenAI format (Bearer key): chat completions, embeddings, models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from llmagg_simulator import openai_chat, openai_embeddings, openai_models
from llmagg_simulator.delivery import (
    Call,
    EventStream,
    Refused,
    endpoint,
    has_bearer_key,
    known_model,
    provider_state,
    receive,
    sse,
)
from llmagg_simulator.openai_errors import OPENAI, error_response, missing_api_key

DONE = b"data: [DONE]\n\n"


def _require_key(request: web.Request) -> None:
    if not has_bearer_key(request):
        raise Refused(missing_api_key())


def _event_stream(chunks: list[dict[str, Any]]) -> EventStream:
    """The role chunk opens the stream; the chunk with finish_reason finishes it; [DONE] closes it."""
    finishing = next(i for i, chunk in enumerate(chunks) if chunk["choices"] and chunk["choices"][0]["finish_reason"])
    return EventStream([sse(chunk) for chunk in chunks], opening=1, finishing=finishing, closing=DONE)


def _chat_call(body: dict[str, Any], reply: Callable[[], openai_chat.Reply]) -> Call:
    streamed = body.get("stream") is True
    return Call(
        body["model"],
        lambda: openai_chat.completion(body, reply()),
        (lambda: _event_stream(openai_chat.stream_chunks(body, reply()))) if streamed else None,
        scripted=lambda answer: _chat_call(body, lambda: openai_chat.scripted_reply(answer)),
    )


def read_chat(request: web.Request, body: Any) -> Call:
    _require_key(request)
    body = openai_chat.check_request(body)
    provider = request.match_info["provider"]
    return _chat_call(body, lambda: openai_chat.simulated_reply(provider, body))


def read_embeddings(request: web.Request, body: Any) -> Call:
    _require_key(request)
    openai_embeddings.inputs_of(body)
    return Call(body["model"], lambda: openai_embeddings.embeddings(body))


def read_models(request: web.Request, body: Any) -> Call:
    _require_key(request)
    provider, models = request.match_info["provider"], provider_state(request).models
    return Call(None, lambda: openai_models.model_list(provider, models))


def read_model(request: web.Request, body: Any) -> Call:
    _require_key(request)
    provider, model_id = request.match_info["provider"], request.match_info["model"]
    return known_model(
        model_id,
        lambda known: openai_models.model(provider, known),
        lambda: error_response(
            404, f"The model '{model_id}' does not exist", "invalid_request_error", "model_not_found", "model"
        ),
        provider_state(request).model_ids,
    )


def read_openrouter_models(request: web.Request, body: Any) -> Call:
    """OpenRouter's `GET /api/v1/models` (it needs no key)."""
    models = provider_state(request).models
    return Call(None, lambda: openai_models.openrouter_model_list(models))


def read_openrouter_key(request: web.Request, body: Any) -> Call:
    _require_key(request)
    return Call(None, openai_models.openrouter_key)


list_models = endpoint(OPENAI, read_models)
retrieve_model = endpoint(OPENAI, read_model)


async def unknown_route(request: web.Request) -> web.Response:
    await receive(request)
    path = "/v1/" + request.match_info["rest"]
    return error_response(404, f"Invalid URL ({request.method} {path})", "invalid_request_error", None)


def add_routes(app: web.Application) -> None:
    """Chat and embeddings; the models routes are shared with Anthropic (see provider_routes)."""
    app.router.add_post("/{provider}/v1/chat/completions", endpoint(OPENAI, read_chat))
    app.router.add_post("/{provider}/v1/embeddings", endpoint(OPENAI, read_embeddings))
    # OpenRouter: base URL http://HOST:PORT/<name>/api/v1, as https://openrouter.ai/api/v1.
    app.router.add_post("/{provider}/api/v1/chat/completions", endpoint(OPENAI, read_chat))
    app.router.add_get("/{provider}/api/v1/models", endpoint(OPENAI, read_openrouter_models))
    app.router.add_get("/{provider}/api/v1/key", endpoint(OPENAI, read_openrouter_key))


def add_catch_all(app: web.Application) -> None:
    app.router.add_route("*", "/{provider}/v1/{rest:.*}", unknown_route)
