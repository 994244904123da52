"""A small HTTP/1.1 client on asyncio's protocol layer, for the router's calls to providers: a POST with a
JSON body on a pooled keep-alive connection (TLS for https), its answer read as it arrives.

It does what those calls need and no more, and costs a fraction of a general client per call: no
redirects, cookies, proxies or retries of answered requests. Bodies come by content length, in chunks
or until the connection closes, gzip or deflate encoded or not. A reused connection the server had
already closed is replaced once, before any byte of an answer came. What arrived before a connection
broke is handed out before the error, so a cut stream's last events still reach the client.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from llmagg.common.http_body import (
    BodyTooLarge,
    ConnectError,
    HttpError,
    ResponseBody,
    ResponseError,
)
from llmagg.common.http_chunks import MAX_HEAD_BYTES
from llmagg.common.running_loop import running_loop

__all__ = [
    "MAX_HEAD_BYTES",
    "BodyTooLarge",
    "ConnectError",
    "HttpClient",
    "HttpError",
    "Response",
    "ResponseError",
]

_PAUSE_BYTES = 1 << 20  # read no more from a connection while this much waits to be read
_DIGITS = re.compile(r"[0-9]{1,18}")
_STATUS = re.compile(r"[0-9]{3}")
_FORBIDDEN_IN_HEADERS = re.compile(r"[\r\n\0]")


class _Origin:
    __slots__ = ("host", "host_header", "port", "scheme", "target")

    def __init__(self, url: str) -> None:
        try:  # a port out of range or not a number, a bracket not closed: ValueError from urllib
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise HttpError("not a usable URL (its host or port)") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
        default_port = 443 if parts.scheme == "https" else 80
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = port or default_port
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if self.port == default_port else f"{host}:{self.port}"

    @property
    def key(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


class Response:
    """An answer's status and headers (names lowercase), its body read as it arrives. `release()` it."""

    def __init__(self, connection: _Connection, status: int, headers: dict[str, str]) -> None:
        self._connection = connection
        self._slot: asyncio.Semaphore | None = None  # the client's exchange slot, given back on release
        self._released = False  # the connection may carry another exchange now
        self.status = status
        self.headers: Mapping[str, str] = headers

    async def read(self) -> bytes:
        """The body's next bytes; b"" at its end. What came before a cut is handed out before its error."""
        if self._released:
            raise HttpError("the response was released")
        return await self._connection.read_body()

    async def read_all(self, limit: int) -> bytes:
        """The whole body; BodyTooLarge when it is over `limit` bytes (read no further than that)."""
        # Only a content length that frames the body tells its size (not beside chunks, not on a 304).
        left = self._connection.plain_bytes_left()
        if left is not None and left > limit:
            raise BodyTooLarge(limit)
        body = bytearray()
        while data := await self.read():
            body += data
            if len(body) > limit:
                raise BodyTooLarge(limit)
        return bytes(body)

    def release(self) -> None:
        """Back to the pool when the body was read to its end on a reusable connection; closed otherwise.
        Once only: a second call would pool (or close) the connection under the exchange it carries next."""
        if self._released:
            return
        self._released = True
        self._connection.release()
        if self._slot is not None:
            self._slot.release()
            self._slot = None


class _Connection(asyncio.Protocol):
    def __init__(self, pool: HttpClient, key: tuple[str, str, int], read_timeout_s: float) -> None:
        self._pool, self.key = pool, key
        self._loop = asyncio.get_running_loop()
        self._read_timeout_s = read_timeout_s
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()  # what came and is not parsed yet (the head, or body bytes before it)
        self._decoded = bytearray()  # the body's bytes not handed out yet
        self._body: ResponseBody | None = None
        self._error: Exception | None = None  # the exchange failed (malformed or cut answer)
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.closed = False
        self.reusable = False
        self.answered = False  # a byte of an answer came on this exchange
        self.in_use = False
        self.idle_since = 0.0

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        if not self.in_use:  # an idle connection has nothing to receive (a server's goodbye, say)
            self.close()
            return
        self.answered = True
        if self._body is None:
            self._buffer += data
        else:
            self._feed_body(data)
        if not self._paused and len(self._decoded) + len(self._buffer) > _PAUSE_BYTES and self._transport:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        self._wake()

    # --- one exchange ---------------------------------------------------------------------------
    def send(self, request: bytes) -> None:
        self.in_use, self.answered, self.reusable = True, False, False
        self._body, self._error = None, None
        self._buffer.clear()
        self._decoded.clear()
        assert self._transport is not None
        self._transport.write(request)

    async def head(self) -> Response:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end > MAX_HEAD_BYTES or (end < 0 and len(self._buffer) > MAX_HEAD_BYTES):
                raise ResponseError("the answer's head is too large")
            if end >= 0:
                response = self._parse_head(end)
                if response is not None:
                    return response
                continue  # an informational (1xx) answer: the real one follows
            if self.closed:
                raise ResponseError("the connection closed before the response head")
            await self._wait()

    def _parse_head(self, end: int) -> Response | None:
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        version, _, rest = lines[0].partition(" ")
        status_text = rest[:3]
        if version not in ("HTTP/1.1", "HTTP/1.0") or not _STATUS.fullmatch(status_text) or rest[3:4] not in ("", " "):
            raise ResponseError("malformed status line")
        status = int(status_text)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise ResponseError("malformed header line")
            name, value = name.lower(), value.strip(" \t")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if 100 <= status < 200:
            return None
        self._body = self._framing(version, status, headers)
        raw, self._buffer = self._buffer, bytearray()
        if raw:
            self._feed_body(raw)
        return Response(self, status, headers)

    def _framing(self, version: str, status: int, headers: dict[str, str]) -> ResponseBody:
        self.reusable = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        encoding = headers.get("content-encoding", "").lower()
        transfer, length = headers.get("transfer-encoding", "").lower(), headers.get("content-length")
        if status in (204, 304):
            return ResponseBody(0, False, "")
        if transfer:
            if transfer.strip() != "chunked":  # another coding under the chunks would be handed out undecoded
                raise ResponseError("the answer's transfer-encoding is not supported")
            return ResponseBody(None, True, encoding)
        if length is not None:
            if not _DIGITS.fullmatch(length):
                raise ResponseError("malformed content-length")
            return ResponseBody(int(length), False, encoding)
        self.reusable = False  # the body ends when the connection does
        return ResponseBody(None, False, encoding)

    def _feed_body(self, data: bytes | bytearray) -> None:
        assert self._body is not None
        if self._body.done:
            self.reusable = False  # bytes after the answer: nothing a pooled connection should carry
            return
        try:
            decoded, rest = self._body.feed(data)
        except ResponseError as error:
            self._fail(error)
            return
        self._decoded += decoded
        if rest:
            self.reusable = False

    def _fail(self, error: Exception) -> None:
        self._error, self.reusable = error, False
        if self._body is not None:
            self._body.done = True
        self.close()

    def plain_bytes_left(self) -> int | None:
        return None if self._body is None else self._body.plain_bytes_left()

    async def read_body(self) -> bytes:
        body = self._body
        assert body is not None
        while True:
            if self._decoded:
                data, self._decoded = bytes(self._decoded), bytearray()
                if self._paused and not self.closed and self._transport is not None:
                    self._paused = False
                    self._transport.resume_reading()
                return data
            if self._error is not None:
                raise self._error
            if body.done:
                return b""
            if self.closed:  # before the body's end: its end for an until-close body, a cut otherwise
                try:
                    self._decoded += body.end()
                except ResponseError as error:
                    self._fail(error)
                continue
            await self._wait()

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(self._read_timeout_s, _time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def release(self) -> None:
        self.in_use = False
        body = self._body
        if self.reusable and not self.closed and body is not None and body.done and not self._decoded:
            if self._paused and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()
            self._body = None
            self._pool.put_back(self)
        else:
            self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class HttpClient:
    """Pooled keep-alive connections per origin; at most `max_connections` exchanges at once (more wait)."""

    def __init__(
        self,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_connections: int = 512,
        keepalive_s: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._origins: dict[str, _Origin] = {}
        self._slots: asyncio.Semaphore | None = None
        self._open: set[_Connection] = set()
        self._closed = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """Send the request and return its answer's head; the body is read from the Response, which the
        caller releases. HttpError or TimeoutError when the exchange fails."""
        origin = self._origin(url)
        request = _request_bytes(origin, body, headers)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        await self._slots.acquire()
        try:
            response = await self._exchange(origin, request)
        except BaseException:
            self._slots.release()
            raise
        response._slot = self._slots
        return response

    async def _exchange(self, origin: _Origin, request: bytes) -> Response:
        pooled = True  # one pooled connection is tried at most: a request is not sent over and over
        while True:
            connection = self._pooled(origin.key) if pooled else None
            reused = connection is not None
            if connection is None:
                connection = await self._connect(origin)
            try:
                connection.send(request)
                return await connection.head()
            except ResponseError:
                connection.close()
                # A pooled connection the server closed while it was idle: the request never reached it.
                if reused and not connection.answered:
                    pooled = False
                    continue
                raise
            except BaseException:
                connection.close()
                raise

    def _origin(self, url: str) -> _Origin:
        origin = self._origins.get(url)
        if origin is None:
            if len(self._origins) > 1024:
                self._origins.clear()
            origin = self._origins[url] = _Origin(url)
        return origin

    def _pooled(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < self._keepalive_s:
                return connection
            connection.close()
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        loop = running_loop()
        context = None
        if origin.scheme == "https":
            context = self._ssl or _default_ssl()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self, origin.key, self._read_timeout_s),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context else None,
                )
        except TimeoutError:
            raise ConnectError(origin.host, origin.port, "timed out") from None
        except (OSError, ssl.SSLError, ValueError) as error:  # ValueError: a host name IDNA cannot encode
            raise ConnectError(origin.host, origin.port, type(error).__name__) from None
        self._open.add(connection)
        return connection

    def put_back(self, connection: _Connection) -> None:
        if self._closed:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle = self._idle.setdefault(connection.key, [])
        if len(idle) >= self._max_connections:
            connection.close()
            return
        idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        self._open.discard(connection)
        idle = self._idle.get(connection.key)
        if idle and connection in idle:
            idle.remove(connection)

    async def close(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
        self._open.clear()


def _request_bytes(origin: _Origin, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [f"POST {origin.target} HTTP/1.1", f"Host: {origin.host_header}", f"Content-Length: {len(body)}"]
    for name, value in headers.items():
        if _FORBIDDEN_IN_HEADERS.search(name) or _FORBIDDEN_IN_HEADERS.search(value) or ":" in name:
            raise HttpError(f"the request header {name[:40]!r} has a forbidden character")
        lines.append(f"{name}: {value}")
    lines.append("Accept-Encoding: identity")  # compressed answers are decoded, but none is asked for
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    except UnicodeEncodeError:
        raise HttpError("a request header is not latin-1") from None


_SSL: ssl.SSLContext | None = None


def _default_ssl() -> ssl.SSLContext:
    global _SSL
    if _SSL is None:
        _SSL = ssl.create_default_context()
    return _SSL
