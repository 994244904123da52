"""HTTP building blocks: orjson responses, and the broken answers faults need (truncated bodies, dropped connections)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers)


def drop_connection(request: web.Request) -> None:
    """Close the socket under the response: what was written is flushed, nothing more arrives, no clean ending."""
    if request.transport is not None:
        request.transport.close()


async def truncated_json(
    request: web.Request, payload: bytes, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """Promise the whole body in Content-Length, send half of it, then drop the connection."""
    response = web.StreamResponse(
        headers={**(headers or {}), "Content-Type": "application/json", "Content-Length": str(len(payload))}
    )
    await response.prepare(request)
    await response.write(payload[: len(payload) // 2])
    drop_connection(request)
    return response


def invalid_json(shape: bytes) -> web.Response:
    """A 200 that says application/json but does not parse."""
    return web.Response(body=shape, content_type="application/json")
