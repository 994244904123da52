"""A small HTTP/1.1 server on asyncio's protocol layer, for the one client a service's data port has: the
gateway's Envoy, on keep-alive connections. It parses a request (head, then a body of a content length
or in chunks, each bounded), hands it to a handler and writes its answer: a whole body, or events
streamed as chunks as the handler yields them (waiting while the connection cannot take more).

Per request it costs a few tens of microseconds, where a gRPC call costs a Python service several
hundred: the data path's hop is this. Anything malformed or over a limit gets its status and the
connection is closed; a request whose connection goes away has its handler cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    499: "Client Closed Request",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; a repeated header's values joined by ", "
    body: bytes = b""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # Streamed instead of `body`: each piece goes out as one chunk as soon as it is yielded.
    stream: AsyncIterator[bytes] | None = None


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Parser:
    """Requests out of a connection's bytes, one at a time."""

    def __init__(self, max_body_bytes: int) -> None:
        self._buffer = bytearray()
        self._max_body = max_body_bytes
        self._request: Request | None = None
        self._length: int | None = None  # of a content-length body
        self._chunks: list[bytes] | None = None  # of a chunked body
        self._chunked_size = 0
        # A body over the limit is read to its end and dropped before the 413: a client still sending
        # would otherwise have its connection reset before it reads the answer. At most this much.
        self._max_dropped = 4 * max_body_bytes
        self._dropped = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next(self) -> Request | None:
        """The next whole request, or None until more bytes come; BadRequest for a malformed one."""
        if self._request is None and not self._parse_head():
            return None
        if self._chunks is not None:
            return self._chunked()
        assert self._length is not None
        if self._length > self._max_body:  # dropped as it comes, then refused
            self._dropped += len(self._buffer)
            self._buffer.clear()
            if self._dropped < self._length:
                return None
            raise BadRequest(413, self._too_large())
        if len(self._buffer) < self._length:
            return None
        request, self._request = self._request, None
        assert request is not None
        request.body = bytes(self._buffer[: self._length])
        del self._buffer[: self._length]
        return request

    def _parse_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise BadRequest(431, "The request's head is too large.")
            return False
        if end > MAX_HEAD_BYTES:
            raise BadRequest(431, "The request's head is too large.")
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest(400, "Malformed request line.")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest(400, "Malformed header line.")
            name, value = name.lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self._request = Request(parts[0], parts[1], headers)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunks, self._chunked_size, self._length = [], 0, None
            return True
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise BadRequest(400, "Malformed content-length.") from None
        if length < 0:
            raise BadRequest(400, "Malformed content-length.")
        if length > self._max_dropped:
            raise BadRequest(413, self._too_large())
        self._length, self._chunks = length, None
        return True

    def _too_large(self) -> str:
        return f"The request body is larger than {self._max_body} bytes."

    def _chunked(self) -> Request | None:
        assert self._chunks is not None and self._request is not None
        while True:
            end = self._buffer.find(b"\r\n")
            if end < 0:
                if len(self._buffer) > 1024:
                    raise BadRequest(400, "Malformed chunk size.")
                return None
            try:
                size = int(bytes(self._buffer[:end]).split(b";", 1)[0], 16)
            except ValueError:
                raise BadRequest(400, "Malformed chunk size.") from None
            if size < 0:
                raise BadRequest(400, "Malformed chunk size.")
            if size == 0:
                trailer_end = self._buffer.find(b"\r\n\r\n", end)
                if trailer_end < 0:
                    return None
                del self._buffer[: trailer_end + 4]
                if self._chunked_size > self._max_body:
                    raise BadRequest(413, self._too_large())
                request, self._request = self._request, None
                request.body, self._chunks = b"".join(self._chunks), None
                return request
            if self._chunked_size + size > self._max_dropped:
                raise BadRequest(413, self._too_large())
            if len(self._buffer) < end + 2 + size + 2:
                return None
            self._chunked_size += size
            if self._chunked_size <= self._max_body:
                self._chunks.append(bytes(self._buffer[end + 2 : end + 2 + size]))
            else:
                self._chunks.clear()  # over the limit: dropped as it comes, refused at its end
            del self._buffer[: end + 2 + size + 2]


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._parser = _Parser(server.max_body_bytes)
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        self._server.connections.add(self)
        with contextlib.suppress(OSError):
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._writable.set()
        self._server.forget(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()  # the client went away: its request is abandoned

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        if self._task is None:
            self._serve_next()

    @property
    def idle(self) -> bool:
        return self._task is None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _serve_next(self) -> None:
        try:
            request = self._parser.next()
        except BadRequest as bad:
            self._refuse(bad)
            return
        if request is None:
            if self._server.closing:
                self.close()
            return
        self._task = asyncio.get_running_loop().create_task(self._serve(request))

    def _refuse(self, bad: BadRequest) -> None:
        assert self._transport is not None
        body = self._server.error_body(bad.status, str(bad))
        headers = [("content-type", "application/json"), ("content-length", str(len(body))), ("connection", "close")]
        self._transport.write(_head(bad.status, headers) + body)
        self._transport.close()

    async def _serve(self, request: Request) -> None:
        assert self._transport is not None
        try:
            response = await self._server.handler(request)
            await self._write(response)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("an HTTP request failed after its answer had started")
            self.close()
            return
        finally:
            self._task = None
        if self._closed:
            return
        if request.headers.get("connection", "").lower() == "close" or self._server.closing:
            self.close()
            return
        self._serve_next()

    async def _write(self, response: Response) -> None:
        transport = self._transport
        assert transport is not None
        if response.stream is None:
            headers = [*response.headers, ("content-length", str(len(response.body)))]
            transport.write(_head(response.status, headers) + response.body)
            return
        transport.write(_head(response.status, [*response.headers, ("transfer-encoding", "chunked")]))
        try:
            async for piece in response.stream:
                if self._closed:
                    return
                if piece:
                    transport.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    if not self._writable.is_set():
                        await self._writable.wait()
            if not self._closed:
                transport.write(b"0\r\n\r\n")
        finally:
            closing = getattr(response.stream, "aclose", None)
            if closing is not None:
                await closing()


class HttpServer:
    """`handler` answers each request; `error_body(status, message)` is the body of a request refused
    before it reached the handler (malformed, over a limit)."""

    def __init__(
        self,
        handler: Handler,
        error_body: Callable[[int, str], bytes],
        max_body_bytes: int,
    ) -> None:
        self.handler = handler
        self.error_body = error_body
        self.max_body_bytes = max_body_bytes
        self.connections: set[_Connection] = set()
        self._none_open = asyncio.Event()
        self.closing = False
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self, host: str, port: int, reuse_port: bool = False) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_port=reuse_port or None, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def forget(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._none_open.set()

    async def stop(self, grace_s: float) -> None:
        """No new connection; idle ones closed, busy ones once their request is answered, within
        `grace_s` (then closed whatever they do: their handlers are cancelled)."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            if connection.idle:
                connection.close()
        if self.connections:
            self._none_open.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._none_open.wait(), grace_s)
        for connection in list(self.connections):
            connection.close()
