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
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from llmagg.common.http_chunks import MAX_HEAD_BYTES, ChunkError, Dechunker

log = logging.getLogger(__name__)

# A connection waiting for a request is closed after IDLE_TIMEOUT_S (Envoy's pool closes its idle ones
# sooner: it never sends on one we are closing); a head begun must be whole within HEAD_TIMEOUT_S. Both
# bound what a caller without the token can hold: it is refused on the head, so it can only stall before.
IDLE_TIMEOUT_S = 120.0
HEAD_TIMEOUT_S = 10.0
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
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
    # Run once the answer is written (or the stream ended, or the writing failed), in the same step of
    # the loop as the write: work the answer need not wait for. Its failure is logged.
    after: Callable[[], None] | None = None


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DIGITS = re.compile(r"[0-9]{1,18}")
_CHUNK_ERRORS = {
    "size": (400, "Malformed chunk size."),
    "crlf": (400, "Malformed chunk: no CRLF after its data."),
    "trailers": (431, "The request's trailers are too large."),
}


class _Parser:
    """Requests out of a connection's bytes, one at a time. Strict: the one client this port has (Envoy)
    sends well-formed requests; anything else is refused rather than guessed at."""

    def __init__(self, max_body_bytes: int) -> None:
        self._buffer = bytearray()
        self._max_body = max_body_bytes
        self._request: Request | None = None
        self._length: int | None = None  # of a content-length body
        self._chunks: Dechunker | None = None  # of a chunked body
        self._chunk_data: list[bytes] = []
        # A content-length body over the limit is read to its end and dropped before the 413: a client
        # still sending would otherwise have its connection reset before it reads the answer. At most this.
        self._max_dropped = 4 * max_body_bytes
        self._dropped = 0

    @property
    def empty(self) -> bool:
        """Nothing of a next request has come (a connection between requests)."""
        return self._request is None and not self._buffer

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def head(self) -> Request | None:
        """The head of the request being read (None until it is whole); BadRequest for a malformed one."""
        if self._request is None:
            self._parse_head()
        return self._request

    def next(self) -> Request | None:
        """The next whole request, or None until more bytes come; BadRequest for a malformed one."""
        if self.head() is None:
            return None
        if self._chunks is not None:
            return self._chunked()
        assert self._length is not None
        if self._length > self._max_dropped:
            raise BadRequest(413, self._too_large())
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

    def _parse_head(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if (end < 0 and len(self._buffer) > MAX_HEAD_BYTES) or end > MAX_HEAD_BYTES:
            raise BadRequest(431, "The request's head is too large.")
        if end < 0:
            return
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[2] != "HTTP/1.1" or not _TOKEN.fullmatch(parts[0]):
            raise BadRequest(400, "Malformed request line (HTTP/1.1 only).")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not _TOKEN.fullmatch(name):
                raise BadRequest(400, "Malformed header line.")
            name, value = name.lower(), value.strip(" \t")
            if name in headers and name in ("content-length", "transfer-encoding"):
                raise BadRequest(400, f"More than one {name}.")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        request = Request(parts[0], parts[1], headers)
        encoding, length = headers.get("transfer-encoding"), headers.get("content-length")
        if encoding is not None:
            if length is not None:
                raise BadRequest(400, "Both content-length and transfer-encoding.")
            if encoding.lower() != "chunked":
                raise BadRequest(501, f"Transfer-encoding {encoding[:40]!r} is not served; only chunked.")
            self._request, self._length = request, None
            self._chunks, self._chunk_data = Dechunker(max_size_line=1024, max_body=self._max_body), []
            return
        if length is not None and not _DIGITS.fullmatch(length):
            raise BadRequest(400, "Malformed content-length.")
        size = int(length or "0")
        self._request, self._length, self._chunks, self._dropped = request, size, None, 0

    def _too_large(self) -> str:
        return f"The request body is larger than {self._max_body} bytes."

    def _chunked(self) -> Request | None:
        assert self._chunks is not None and self._request is not None
        try:
            data, rest = self._chunks.feed(self._buffer)
        except ChunkError as error:
            if error.kind == "too_large":  # no end to wait for: refused at once
                raise BadRequest(413, self._too_large()) from None
            raise BadRequest(*_CHUNK_ERRORS[error.kind]) from None
        self._buffer = bytearray(rest)
        if data:
            self._chunk_data.append(data)
        if not self._chunks.done:
            return None
        request, self._request, self._chunks = self._request, None, None
        request.body, self._chunk_data = b"".join(self._chunk_data), []
        return request


def _run_after(after: Callable[[], None]) -> None:
    try:
        after()
    except Exception:
        log.exception("the work after an HTTP answer failed")


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()  # made by the server's loop, for it: looked up once
        self._parser = _Parser(server.max_body_bytes)
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False
        self._admitted = False
        self._head_sent = False
        self._timer: asyncio.TimerHandle | None = None  # while waiting for a request, or for its whole head
        self._head_begun = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        self._server.connections.add(self)
        with contextlib.suppress(OSError):
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._wait_for_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._stop_timer()
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
        elif self._parser.buffered > MAX_HEAD_BYTES + self._server.max_body_bytes:
            self.close()  # a next request (Envoy sends none while one is served) as large as allowed

    @property
    def idle(self) -> bool:
        """Between requests: none being served, nothing of a next one received."""
        return self._task is None and self._parser.empty

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _wait_for_request(self) -> None:
        """Until a next request's head begins: at most the idle timeout."""
        self._stop_timer()
        self._timer = self._loop.call_later(self._server.idle_timeout_s, self.close)
        self._head_begun = False

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_too_slow(self) -> None:
        self._timer = None
        if not self._closed:
            self._refuse(408, self._server.error_body(408, "The request's head did not arrive in time."))

    def _serve_next(self) -> None:
        try:
            if not self._admitted:
                head = self._parser.head()
                if head is None:
                    if not self._head_begun and not self._parser.empty:  # begun: it has the head timeout
                        self._head_begun = True
                        self._stop_timer()
                        self._timer = self._loop.call_later(self._server.head_timeout_s, self._head_too_slow)
                    return
                self._stop_timer()
                refusal = self._server.admit(head)
                if refusal is not None:  # refused before its body is read (or held)
                    self._refuse(refusal.status, refusal.body, refusal.headers)
                    return
                self._admitted = True
            request = self._parser.next()
        except BadRequest as bad:
            self._refuse(bad.status, self._server.error_body(bad.status, str(bad)))
            return
        if request is None:
            if self._server.closing:
                self.close()
            return
        self._admitted = False
        self._task = self._loop.create_task(self._serve(request))
        self._server.tasks.add(self._task)
        self._task.add_done_callback(self._server.tasks.discard)

    def _refuse(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        assert self._transport is not None
        given = [(k, v) for k, v in headers or [("content-type", "application/json")] if k != "content-length"]
        framing = [("content-length", str(len(body))), ("connection", "close")]
        self._transport.write(_head(status, [*given, *framing]) + body)
        self._transport.close()

    async def _serve(self, request: Request) -> None:
        assert self._transport is not None
        self._head_sent = False
        try:
            response = await self._server.handler(request)
            try:
                await self._write(response)
            finally:
                if response.after is not None:
                    _run_after(response.after)
        except asyncio.CancelledError:
            self.close()  # the client went away, or the server is ending requests: no half answer stays open
            return
        except Exception:
            log.exception("an HTTP request failed")
            if not self._head_sent and not self._closed:
                self._refuse(
                    500, self._server.error_body(500, "The server had an error while processing your request.")
                )
            self.close()
            return
        finally:
            self._task = None
        if self._closed:
            return
        if request.headers.get("connection", "").lower() == "close" or self._server.closing:
            self.close()
            return
        self._wait_for_request()
        self._serve_next()

    async def _write(self, response: Response) -> None:
        transport = self._transport
        assert transport is not None
        closing = [("connection", "close")] if self._server.closing else []  # not reused: Envoy opens another
        if response.stream is None:
            headers = [*response.headers, ("content-length", str(len(response.body))), *closing]
            self._head_sent = True
            transport.write(_head(response.status, headers) + response.body)
            return
        # The head goes out with the first piece (one write, one packet: the first byte sooner), which a
        # stream has ready when it is handed over (the router's: the events read before answering). The
        # pieces after it that come in the same step of the loop (an upstream's burst, read at once) go out
        # together when the step ends: one write, not one per piece.
        head = _head(response.status, [*response.headers, ("transfer-encoding", "chunked"), *closing])
        pending: list[bytes] = []
        flushing: asyncio.Handle | None = None

        def flush() -> None:
            nonlocal flushing
            flushing = None
            if pending and not self._closed:
                transport.write(b"".join(pending))
            pending.clear()

        try:
            async for piece in response.stream:
                if self._closed:
                    return
                if not piece:
                    continue
                framed = b"%x\r\n%s\r\n" % (len(piece), piece)
                if head:
                    transport.write(head + framed)
                    head, self._head_sent = b"", True
                else:
                    pending.append(framed)
                    if flushing is None:
                        flushing = self._loop.call_soon(flush)
                if not self._writable.is_set():
                    flush()
                    await self._writable.wait()
            if not self._closed:
                transport.write(b"".join(pending) + head + b"0\r\n\r\n")
                pending.clear()
        finally:
            if flushing is not None:
                flushing.cancel()
            flush()  # what a failing stream gave before its failure still reaches the client
            ending = getattr(response.stream, "aclose", None)
            if ending is not None:
                await ending()


class HttpServer:
    """`handler` answers each request; `admit(head)` may refuse one on its head alone (a Response), before
    its body is read; `error_body(status, message)` is the body of a request refused before it reached the
    handler (malformed, over a limit)."""

    def __init__(
        self,
        handler: Handler,
        error_body: Callable[[int, str], bytes],
        max_body_bytes: int,
        admit: Callable[[Request], Response | None] = lambda head: None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        head_timeout_s: float = HEAD_TIMEOUT_S,
    ) -> None:
        self.handler = handler
        self.idle_timeout_s = idle_timeout_s
        self.head_timeout_s = head_timeout_s
        self.admit = admit
        self.error_body = error_body
        self.max_body_bytes = max_body_bytes
        self.tasks: set[asyncio.Task[None]] = set()
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
        if self.tasks:  # their streams end (upstreams closed, settled) before the service's clients close
            await asyncio.gather(*self.tasks, return_exceptions=True)
