"""`/<provider>/v1beta/...` in the Gemini API format: generateContent, streamGenerateContent, models."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from llmagg_simulator import gemini_generate
from llmagg_simulator.delivery import Call, Refused, endpoint, known_model, provider_state, receive
from llmagg_simulator.gemini_errors import GEMINI, error_response, missing_api_key
from llmagg_simulator.validation import BadRequest

API_VERSION = "v1beta"


def _require_key(request: web.Request) -> None:
    """The key comes in x-goog-api-key or in ?key=."""
    if not (request.headers.get("x-goog-api-key", "").strip() or request.query.get("key", "").strip()):
        raise Refused(missing_api_key())


def read_model_action(request: web.Request, body: Any) -> Call:
    """POST models/{model}:generateContent and models/{model}:streamGenerateContent?alt=sse."""
    _require_key(request)
    model, _, action = request.match_info["target"].rpartition(":")
    if action not in ("generateContent", "streamGenerateContent") or not model:
        raise Refused(error_response(404, f"Method not found: models/{request.match_info['target']}."))
    body = gemini_generate.check_request(body)
    provider = request.match_info["provider"]
    if action == "generateContent":
        return Call(model, lambda: gemini_generate.generate(provider, model, body))
    if request.query.get("alt") != "sse":
        # The real API then streams one JSON array; the simulator only serves the SSE form every SDK asks for.
        raise BadRequest("The provider simulator serves streamGenerateContent only with ?alt=sse.")
    return Call(
        model,
        lambda: gemini_generate.generate(provider, model, body),
        lambda: gemini_generate.event_stream(gemini_generate.stream_chunks(provider, model, body)),
    )


def read_models(request: web.Request, body: Any) -> Call:
    _require_key(request)
    listing = gemini_generate.model_page(dict(request.query), provider_state(request).models)
    return Call(None, lambda: listing)


def read_model(request: web.Request, body: Any) -> Call:
    _require_key(request)
    model_id = request.match_info["target"]
    models = provider_state(request).models
    return known_model(
        model_id,
        lambda known: gemini_generate.model_resource(known, models),
        lambda: error_response(404, f"models/{model_id} is not found for API version {API_VERSION}."),
        [model.id for model in models],
    )


async def unknown_route(request: web.Request) -> web.Response:
    await receive(request)
    return error_response(404, f"Method not found: {request.method} /{API_VERSION}/{request.match_info['rest']}.")


def add_routes(app: web.Application) -> None:
    prefix = f"/{{provider}}/{API_VERSION}"
    app.router.add_get(f"{prefix}/models", endpoint(GEMINI, read_models))
    app.router.add_get(f"{prefix}/models/{{target}}", endpoint(GEMINI, read_model))
    app.router.add_post(f"{prefix}/models/{{target}}", endpoint(GEMINI, read_model_action))
    app.router.add_route("*", f"{prefix}/{{rest:.*}}", unknown_route)
