"""`/<provider>/v1beta/...` in the Gemini API format: generateContent, streamGenerateContent, models."""

from __future__ import annotations

from aiohttp import web

from llmagg_simulator import gemini_generate
from llmagg_simulator.catalog import MODEL_IDS
from llmagg_simulator.delivery import Dialect, answer, counted_in_flight, receive, stream
from llmagg_simulator.gemini_errors import (
    MALFORMED_BODY,
    MALFORMED_EVENT,
    STREAM_ERROR_EVENT,
    InvalidArgument,
    error_response,
    fault_error_response,
    missing_api_key,
)

GEMINI = Dialect(fault_error_response, MALFORMED_BODY, MALFORMED_EVENT, STREAM_ERROR_EVENT)
API_VERSION = "v1beta"


def _has_api_key(request: web.Request) -> bool:
    """The key comes in x-goog-api-key or in ?key=."""
    return bool(request.headers.get("x-goog-api-key", "").strip() or request.query.get("key", "").strip())


async def model_action(request: web.Request) -> web.StreamResponse:
    """POST models/{model}:generateContent and models/{model}:streamGenerateContent?alt=sse."""
    state, body = await receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    model, _, action = request.match_info["target"].rpartition(":")
    if action not in ("generateContent", "streamGenerateContent") or not model:
        return error_response(404, f"Method not found: models/{request.match_info['target']}.")
    try:
        body = gemini_generate.check_request(body)
        if action == "streamGenerateContent" and request.query.get("alt") != "sse":
            # The real API then streams one JSON array; the simulator only serves the SSE form every SDK asks for.
            raise InvalidArgument("The provider simulator serves streamGenerateContent only with ?alt=sse.")
    except InvalidArgument as invalid:
        return invalid.response()
    provider, fault = request.match_info["provider"], state.next_fault()
    if action == "streamGenerateContent":
        return await stream(
            request,
            GEMINI,
            fault,
            model,
            lambda: gemini_generate.event_stream(gemini_generate.stream_chunks(provider, model, body)),
        )
    return await answer(request, GEMINI, fault, model, lambda: gemini_generate.generate(provider, model, body))


async def list_models(request: web.Request) -> web.StreamResponse:
    state, _ = await receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    try:
        listing = gemini_generate.model_page(dict(request.query))
    except InvalidArgument as invalid:
        return invalid.response()
    return await answer(request, GEMINI, state.next_fault(), None, lambda: listing)


async def get_model(request: web.Request) -> web.StreamResponse:
    state, _ = await receive(request)
    if not _has_api_key(request):
        return missing_api_key()
    model_id = request.match_info["target"]
    if model_id not in MODEL_IDS:
        return error_response(404, f"models/{model_id} is not found for API version {API_VERSION}.")
    return await answer(request, GEMINI, state.next_fault(), model_id, lambda: gemini_generate.model_resource(model_id))


async def unknown_route(request: web.Request) -> web.Response:
    await receive(request)
    return error_response(404, f"Method not found: {request.method} /{API_VERSION}/{request.match_info['rest']}.")


def add_routes(app: web.Application) -> None:
    prefix = f"/{{provider}}/{API_VERSION}"
    app.router.add_get(f"{prefix}/models", counted_in_flight(list_models))
    app.router.add_get(f"{prefix}/models/{{target}}", counted_in_flight(get_model))
    app.router.add_post(f"{prefix}/models/{{target}}", counted_in_flight(model_action))
    app.router.add_route("*", f"{prefix}/{{rest:.*}}", unknown_route)
