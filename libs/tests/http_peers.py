"""Loopback servers for the providers' HTTP/1.1 client's tests: byte-exact scripted answers, counted
connections and requests (so reuse is asserted exactly), and the helpers the tests share."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable

import pytest

from llmagg.common.http_client import (
    HttpClient,
    Response,
    ResponseError,
)

WAIT_S = 10.0  # a bound on waiting for a condition that must come; only a broken client reaches it
CUT = "the connection closed before the response was complete"


def ok(body: bytes = b"ok", *extra: str, version: str = "HTTP/1.1", status: str = "200 OK") -> bytes:
    head = [f"{version} {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunked(*chunks: bytes, extra: tuple[str, ...] = (), trailer: bytes = b"") -> bytes:
    head = "\r\n".join(["HTTP/1.1 200 OK", "Transfer-Encoding: chunked", *extra]) + "\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return head.encode() + body + b"0\r\n" + trailer + b"\r\n"


class Peer:
    """One accepted connection, seen from the server."""

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server, self.reader, self.writer = server, reader, writer

    async def request(self) -> bytes | None:
        """The next whole request (head and content-length body), recorded; None when the client closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            raw = head + await self.reader.readexactly(length)
        except asyncio.IncompleteReadError as error:
            self.server.leftover += error.partial
            return None
        except (ConnectionError, asyncio.LimitOverrunError):
            return None
        self.server.requests.append(raw)
        self.server.in_flight += 1
        self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        self.server.notify()
        return raw

    async def send(self, data: bytes, *, per_write: int | None = None) -> None:
        step = per_write or len(data) or 1
        for start in range(0, len(data), step):
            self.writer.write(data[start : start + step])
            await self.writer.drain()

    def answered(self) -> None:
        self.server.in_flight -= 1
        self.server.notify()

    async def answer(self, data: bytes, *, per_write: int | None = None) -> None:
        await self.send(data, per_write=per_write)
        self.answered()

    async def until_client_closes(self) -> None:
        """Answer no more, and notice when the client gives up on the connection."""
        while await self.reader.read(65536):
            pass

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


Handler = Callable[[Peer], Awaitable[None]]


def then_close(data: bytes = b"", *, per_write: int | None = None) -> Handler:
    """A handler that sends `data` (a whole answer, or the start of one) and closes the connection."""

    async def handle(peer: Peer) -> None:
        await peer.answer(data, per_write=per_write)
        await peer.close()

    return handle


class Server:
    """A loopback server: each connection is served by `handle` (by default: every request answered with
    the next of `answers`, bytes or a handler of its own). Counts what it saw; `until` waits on it."""

    def __init__(
        self,
        answers: list[bytes | Handler] | None = None,
        *,
        handle: Handler | None = None,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.answers = list(answers or [])
        self._handle = handle or self._answer_each
        self._ssl, self._host, self._port = ssl_context, host, port
        self.connections = 0  # accepted
        self.closed = 0  # ended (by either side)
        self.requests: list[bytes] = []
        self.leftover = bytearray()  # bytes of an unfinished request at a connection's end
        self.in_flight = 0  # requests read and not yet answered
        self.max_in_flight = 0
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, self._host, self._port, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str = "/v1/chat", scheme: str | None = None, host: str | None = None) -> str:
        scheme = scheme or ("https" if self._ssl else "http")
        return f"{scheme}://{host or self._host}:{self.port}{path}"

    def notify(self) -> None:
        self._changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        self.notify()
        peer = Peer(self, reader, writer)
        try:
            await self._handle(peer)
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):  # cancelled: the test's end
            pass
        finally:
            await peer.close()
            self.closed += 1
            self.notify()

    async def _answer_each(self, peer: Peer) -> None:
        while await peer.request() is not None:
            answer = self.answers.pop(0) if self.answers else ok()
            if isinstance(answer, bytes):
                await peer.answer(answer)
            else:
                await answer(peer)
            if peer.writer.is_closing():
                return


def client(**options: object) -> HttpClient:
    settings: dict[str, object] = {"connect_timeout_s": WAIT_S, "read_timeout_s": WAIT_S}
    return HttpClient(**(settings | options))  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def using(http: HttpClient):
    try:
        yield http
    finally:
        await http.close()


async def body_of(http: HttpClient, url: str, body: bytes = b"{}", headers: dict[str, str] | None = None) -> bytes:
    response = await http.post(url, body, headers or {})
    try:
        return await response.read_all(1 << 30)
    finally:
        response.release()


async def read_to_cut(response: Response) -> tuple[bytes, ResponseError]:
    """Every byte read() hands out, then the error it ends with."""
    got = bytearray()
    with pytest.raises(ResponseError) as raised:
        while data := await response.read():
            got += data
    return bytes(got), raised.value


# --- 1. content length, reuse, the request as sent ------------------------------------------------
