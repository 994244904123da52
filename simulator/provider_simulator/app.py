"""The simulator's HTTP app: `/<provider>/v1/...` speaks OpenAI, `/_sim/...` scripts the faults."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from provider_simulator import openai_format as fmt
from provider_simulator.faults import Fault, FaultError, Providers

PROVIDERS = web.AppKey("providers", Providers)
CHUNK_DELAY = web.AppKey("chunk_delay_s", float)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers)


def _error(status: int, message: str, error_type: str, code: str | None, param: str | None = None, **headers: str):
    return _json(fmt.error(message, error_type, code, param), status=status, headers=headers or None)


def _rate_limited(fault: Fault) -> web.Response:
    seconds = fault.retry_after
    whole = f"{seconds:g}"
    return _error(
        429,
        f"Rate limit reached for requests. Limit 30, Used 30, Requested 1. Please try again in {whole}s.",
        "requests",
        "rate_limit_exceeded",
        **{
            "retry-after": str(max(1, round(seconds))),
            "x-ratelimit-limit-requests": "30",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{whole}s",
            "x-ratelimit-limit-tokens": "6000",
            "x-ratelimit-remaining-tokens": "5990",
            "x-ratelimit-reset-tokens": "100ms",
        },
    )


def _fault_response(fault: Fault) -> web.Response | None:
    """The response for faults that replace the answer entirely; None when the answer goes ahead."""
    if fault.type == "429":
        return _rate_limited(fault)
    if fault.type == "500":
        return _error(500, "The server had an error while processing your request.", "server_error", None)
    if fault.type == "503":
        return _error(503, "The engine is currently overloaded, please try again later.", "service_unavailable", None)
    if fault.type == "401":
        return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
    if fault.type == "400":
        return _error(400, "Invalid value for 'temperature'.", "invalid_request_error", "invalid_value", "temperature")
    if fault.type == "context_length":
        return _error(
            400,
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
        )
    return None


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def _authorized(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    return header.startswith("Bearer ") and bool(header[7:].strip())


async def _prologue(request: web.Request) -> tuple[str, Any, Fault] | web.Response:
    """Log the request, check auth, pick the fault; a Response when the request ends here."""
    name = request.match_info["provider"]
    state = request.app[PROVIDERS].get(name)
    body = await _read_json(request)
    state.requests.append(
        {
            "method": request.method,
            "path": request.path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": body,
        }
    )
    if not _authorized(request):
        return _error(401, "You didn't provide an API key.", "invalid_request_error", "invalid_api_key")
    return name, body, state.next_fault()


async def _delay_or_hang(request: web.Request, fault: Fault) -> None:
    if fault.type == "hang":
        await asyncio.sleep(fault.max_hang_s)  # ends early when the client disconnects (handler cancelled)
    elif fault.type == "slow_first_byte":
        await asyncio.sleep(fault.delay_s)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    started = await _prologue(request)
    if isinstance(started, web.Response):
        return started
    name, body, fault = started
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("model"), str)
        or not isinstance(body.get("messages"), list)
    ):
        return _error(
            400, "The body must be JSON with `model` and `messages`.", "invalid_request_error", "invalid_body"
        )
    await _delay_or_hang(request, fault)
    if (replaced := _fault_response(fault)) is not None:
        return replaced
    if body.get("stream") is True:
        return await _stream(request, name, body, fault)
    if fault.type == "malformed_json":
        return web.Response(body=b'{"id": "chatcmpl-sim", "choices": [{"mess', content_type="application/json")
    if fault.type == "cut_stream":
        return await _cut_body(request, orjson.dumps(fmt.completion(name, body)))
    return _json(fmt.completion(name, body))


async def _cut_body(request: web.Request, payload: bytes) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(payload))})
    await response.prepare(request)
    await response.write(payload[: len(payload) // 2])
    request.transport.close()
    return response


async def _stream(request: web.Request, name: str, body: dict[str, Any], fault: Fault) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    delay = request.app[CHUNK_DELAY]
    chunks = fmt.stream_chunks(name, body)
    for index, chunk in enumerate(chunks):
        if fault.type == "cut_stream" and index > fault.after_chunks:
            request.transport.close()  # abrupt: no final chunk, no [DONE]
            return response
        if fault.type == "malformed_json" and index == 1:
            await response.write(b'data: {"id": "broken", "choices": [{"del\n\n')
            continue
        if delay and index:
            await asyncio.sleep(delay)
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def embeddings(request: web.Request) -> web.Response:
    started = await _prologue(request)
    if isinstance(started, web.Response):
        return started
    _, body, fault = started
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body.get("input"):
        return _error(400, "The body must be JSON with `model` and `input`.", "invalid_request_error", "invalid_body")
    await _delay_or_hang(request, fault)
    if (replaced := _fault_response(fault)) is not None:
        return replaced
    if fault.type == "malformed_json":
        return web.Response(body=b'{"data": [', content_type="application/json")
    return _json(fmt.embeddings(body))


async def list_models(request: web.Request) -> web.Response:
    started = await _prologue(request)
    if isinstance(started, web.Response):
        return started
    name, _, fault = started
    return _fault_response(fault) or _json(fmt.models(name))


# --- control API -----------------------------------------------------------------------------------


async def _faults_from(request: web.Request, key: str) -> list[tuple[Fault, int]]:
    body = await _read_json(request)
    raw = body.get(key) if isinstance(body, dict) else None
    items = raw if key == "faults" else [body]
    if not isinstance(items, list) or not items:
        raise web.HTTPBadRequest(text=f"expected {{'{key}': ...}}")
    try:
        return [Fault.parse(item) for item in items]
    except FaultError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


async def script_faults(request: web.Request) -> web.Response:
    state = request.app[PROVIDERS].get(request.match_info["provider"])
    for fault, count in await _faults_from(request, "faults"):
        state.queue.append([fault, count])
    return _json({"queued": len(state.queue)})


async def set_behaviour(request: web.Request) -> web.Response:
    state = request.app[PROVIDERS].get(request.match_info["provider"])
    [(fault, _)] = await _faults_from(request, "type")
    state.default = fault
    return _json({"behaviour": fault.type})


async def logged_requests(request: web.Request) -> web.Response:
    return _json({"requests": list(request.app[PROVIDERS].get(request.match_info["provider"]).requests)})


async def reset_provider(request: web.Request) -> web.Response:
    request.app[PROVIDERS].get(request.match_info["provider"]).reset()
    return _json({"reset": request.match_info["provider"]})


async def reset_all(request: web.Request) -> web.Response:
    request.app[PROVIDERS].reset_all()
    return _json({"reset": "all"})


async def health(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


def build_app(defaults: dict[str, Fault] | None = None, chunk_delay_s: float = 0.0) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[PROVIDERS] = Providers(defaults)
    app[CHUNK_DELAY] = chunk_delay_s
    app.router.add_get("/_sim/health", health)
    app.router.add_post("/_sim/{provider}/faults", script_faults)
    app.router.add_put("/_sim/{provider}/behaviour", set_behaviour)
    app.router.add_get("/_sim/{provider}/requests", logged_requests)
    app.router.add_delete("/_sim/{provider}", reset_provider)
    app.router.add_delete("/_sim", reset_all)
    app.router.add_post("/{provider}/v1/chat/completions", chat_completions)
    app.router.add_post("/{provider}/v1/embeddings", embeddings)
    app.router.add_get("/{provider}/v1/models", list_models)
    return app
