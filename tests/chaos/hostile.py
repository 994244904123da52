"""Small hostile upstreams for the chaos suite: an aiohttp app in a thread of the test process.

Each behaviour is a route prefix (`/<behaviour>/v1/chat/completions`), so one server plays many
misbehaving providers at once. Every request is recorded (path and headers) for the tests to check.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _key_of(request: web.Request) -> str:
    """The key the router sent, whatever its auth style."""
    for name in ("authorization", "x-api-key", "x-goog-api-key"):
        value = request.headers.get(name)
        if value:
            return value.split(" ", 1)[-1] if name == "authorization" else value
    return "no-key-sent"


def _chunk(text: str, finish: str | None = None, **extra: str) -> bytes:
    choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [choice], **extra}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def echo_key_everywhere(request: web.Request) -> web.StreamResponse:
    """A 400 whose every error field quotes the key (some providers echo credentials in errors)."""
    key = _key_of(request)
    error = {"message": f"Invalid request for key {key}", "type": f"type-{key}", "param": key, "code": f"c-{key}"}
    return web.json_response({"error": error}, status=400)


async def echo_key_in_plain_5xx(request: web.Request) -> web.StreamResponse:
    return web.Response(status=502, text=f"<html>upstream rejected Authorization: {_key_of(request)}</html>")


async def echo_key_in_stream_error(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(_chunk("Hello"))
    error = {"error": {"message": f"internal failure for {_key_of(request)}", "code": "server_error"}}
    await response.write(b"data: " + orjson.dumps(error) + b"\n\n")
    return response


async def echo_key_in_an_answer(request: web.Request) -> web.StreamResponse:
    """A successful answer quoting the key: in its text, id and a field of its own; streamed, in every chunk
    and cut in two across two chunks."""
    key = _key_of(request)
    if not (await request.json()).get("stream"):
        message = {"role": "assistant", "content": f"Your key is {key}."}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return web.json_response({"id": f"e-{key}", "object": "chat.completion", "choices": [choice], "k": key})
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    half = len(key) // 2
    for piece in (f"Your key is {key}, or {key[:half]}", f"{key[half:]}."):
        await response.write(_chunk(piece, k=key))
    await response.write(_chunk("", finish="stop") + b"data: [DONE]\n\n")
    return response


async def cut_after_two_chunks(request: web.Request) -> web.StreamResponse:
    """Two content chunks and the connection's end in one write: the bytes and the cut arrive together."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(_chunk("Hello") + _chunk(" from"))
    assert request.transport is not None
    request.transport.close()  # flushes what was written, then the connection ends mid-body
    return response


async def huge_line(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: " + b"x" * (3 * 1024 * 1024) + b"\n\n")
    return response


async def huge_answer(request: web.Request) -> web.StreamResponse:
    """2 MiB of answer: as 64 stream chunks of 32 KiB, or as one JSON body when no stream was asked for."""
    piece = "y" * (32 * 1024)
    if (await request.json()).get("stream"):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(64):
            await response.write(_chunk(piece))
        await response.write(_chunk("", finish="stop") + b"data: [DONE]\n\n")
        return response
    content = piece * 64
    return web.json_response({"id": "h", "object": "chat.completion", "choices": [{"message": {"content": content}}]})


def retry_after(value: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        error = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}
        return web.json_response(error, status=429, headers={"retry-after": value})

    return handle


async def deep_answer(request: web.Request) -> web.StreamResponse:
    nested: Any = "deep"
    for _ in range(300):
        nested = [nested]
    return web.Response(
        body=b'{"id": "d", "choices": [{"message": {"content": "x"}}], "x": ' + orjson.dumps(nested) + b"}",
        content_type="application/json",
    )


BEHAVIOURS: dict[str, Handler] = {
    "echo-key": echo_key_everywhere,
    "echo-key-plain": echo_key_in_plain_5xx,
    "echo-key-stream": echo_key_in_stream_error,
    "echo-key-ok": echo_key_in_an_answer,
    "cut-two": cut_after_two_chunks,
    "huge-line": huge_line,
    "huge-answer": huge_answer,
    "deep-answer": deep_answer,
    "retry-inf": retry_after("inf"),
    "retry-nan": retry_after("nan"),
    "retry-1e300": retry_after("1e300"),
}


class HostileUpstream:
    """Serves BEHAVIOURS on 127.0.0.1 and a free port from a background thread until stop()."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self._thread.start()
        if not started.wait(30):
            raise RuntimeError("the hostile upstream did not start")

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def record(request: web.Request) -> web.StreamResponse:
            self.requests.append((request.path, dict(request.headers)))
            await request.read()
            return await BEHAVIOURS[request.match_info["behaviour"]](request)

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{behaviour}/v1/chat/completions", record)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        started.set()
        self._loop.run_forever()

    def base_url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.port}/{behaviour}/v1"

    def stop(self) -> None:
        async def cleanup() -> None:
            assert self._runner is not None
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
