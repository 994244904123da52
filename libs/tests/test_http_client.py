"""The providers' HTTP/1.1 client against real loopback servers that answer byte-exact scripts: framing
(length, chunks, until close), encodings, cuts, reuse and its limits, timeouts, header injection, the
connection cap, cancellation, TLS. The servers count connections and requests, so reuse is asserted exactly."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import gzip
import ipaddress
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from llmagg.common.http_client import (
    MAX_HEAD_BYTES,
    BodyTooLarge,
    ConnectError,
    HttpClient,
    HttpError,
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


async def test_a_content_length_body_and_two_posts_on_one_connection():
    async with Server([ok(b"first"), ok(b"second")]) as server, using(client()) as http:
        assert await body_of(http, server.url()) == b"first"
        response = await http.post(server.url(), b"{}", {})
        assert (response.status, response.headers["content-length"]) == (200, "6")
        assert await response.read() == b"second"
        assert await response.read() == b""
        response.release()
        assert (server.connections, len(server.requests)) == (1, 2)


async def test_the_request_bytes_as_sent():
    async with Server() as server, using(client()) as http:
        headers = {"Authorization": "Bearer k-1", "X-Trace": "a b;c=d", "Content-Type": "application/json"}
        await body_of(http, server.url("/v1/chat/completions?api-version=2&x=%20"), b'{"a":1}', headers)
        assert server.requests == [
            b"POST /v1/chat/completions?api-version=2&x=%20 HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{server.port}\r\n".encode()
            + b"Content-Length: 7\r\n"
            + b"Authorization: Bearer k-1\r\nX-Trace: a b;c=d\r\nContent-Type: application/json\r\n"
            + b'Accept-Encoding: gzip, deflate\r\n\r\n{"a":1}'
        ]


async def test_the_host_header_leaves_out_the_default_port():
    try:
        server = Server(host="127.0.0.91", port=80)
        await server.__aenter__()
    except OSError as error:  # not root, or the port is taken
        pytest.skip(f"cannot listen on 127.0.0.91:80: {error}")
    try:
        async with using(client()) as http:
            assert await body_of(http, "http://127.0.0.91/v1", b"") == b"ok"
            assert await body_of(http, "http://127.0.0.91:80/v1", b"") == b"ok"
        head = b"POST /v1 HTTP/1.1\r\nHost: 127.0.0.91\r\nContent-Length: 0\r\nAccept-Encoding: gzip, deflate\r\n\r\n"
        assert server.requests == [head, head]
        assert server.connections == 1  # both URLs name one origin
    finally:
        await server.__aexit__()


async def test_the_host_header_of_an_ipv6_origin_and_an_empty_path():
    try:
        server = Server(host="::1")
        await server.__aenter__()
    except OSError as error:
        pytest.skip(f"no IPv6 loopback: {error}")
    try:
        async with using(client()) as http:
            assert await body_of(http, f"http://[::1]:{server.port}", b"") == b"ok"
        assert server.requests[0].startswith(f"POST / HTTP/1.1\r\nHost: [::1]:{server.port}\r\n".encode())
    finally:
        await server.__aexit__()


async def test_a_large_request_body_arrives_whole():
    body = bytes(range(256)) * (4 * 4096)  # 4 MiB
    async with Server() as server, using(client()) as http:
        assert await body_of(http, server.url(), body) == b"ok"
        assert server.requests[0].endswith(b"\r\n\r\n" + body)
        assert b"\r\nContent-Length: 4194304\r\n" in server.requests[0]


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/", "http:///no-host", "127.0.0.1:80/", "http://h:99999/", "http://h:abc/", "http://[::1/"],
)
async def test_a_url_the_client_cannot_use_is_an_http_error(url):
    async with using(client()) as http:
        with pytest.raises(HttpError):
            await http.post(url, b"{}", {})


# --- 2. chunks ------------------------------------------------------------------------------------


async def test_chunks_with_extensions_and_trailers_one_byte_per_write():
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Head: 1\r\n\r\n"
        b"5;name=value\r\nhello\r\n"
        b'1 ; quoted="a;b"\r\n,\r\n'
        b"6\r\n world\r\n"
        b"0;last\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n"
    )

    async def trickle(peer: Peer) -> None:
        await peer.answer(answer, per_write=1)

    async with Server([trickle, ok(b"next")]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        assert response.headers["x-head"] == "1"
        assert await response.read_all(100) == b"hello, world"
        response.release()
        assert await body_of(http, server.url()) == b"next"  # the trailers were consumed: reused cleanly
        assert (server.connections, len(server.requests)) == (1, 2)


async def test_five_mib_of_chunks_read_slowly_pause_the_connection_and_arrive_intact():
    data = bytes(range(256)) * (5 * 4096)  # 5 MiB
    piece = 64 * 1024
    answer = chunked(*(data[i : i + piece] for i in range(0, len(data), piece)))

    async def flood(peer: Peer) -> None:
        await peer.answer(answer)

    async with Server([flood, ok()]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        connection, arrived = response._connection, asyncio.Event()
        wake = connection._wake

        def spy() -> None:  # the client wakes its reader on every byte that comes (uvloop: no data_received spy)
            wake()
            arrived.set()

        connection._wake = spy  # type: ignore[method-assign]
        got, pauses = bytearray(), 0
        while True:
            # Read only once the client stopped reading from the socket (or the body is all in).
            async with asyncio.timeout(WAIT_S):
                while not (connection._paused or connection._body.done):
                    arrived.clear()
                    await arrived.wait()
            if connection._paused:
                pauses += 1
                assert not connection._transport.is_reading()  # the socket, not just a flag
            # What the client holds stays near its pause mark (one socket read over it at most).
            assert len(connection._decoded) <= (1 << 20) + 256 * 1024 + piece
            data_read = await response.read()
            if not data_read:
                break
            got += data_read
            assert connection._transport.is_reading() or connection._body.done  # handing out resumed it
        response.release()
        assert got == data
        assert pauses >= 2
        assert await body_of(http, server.url()) == b"ok"  # resumed and reused
        assert server.connections == 1


# --- 3. until close -------------------------------------------------------------------------------


async def test_a_body_until_close_is_read_whole_and_its_connection_not_reused():
    async def until_close(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ", per_write=7)
        await peer.send(b"part two")
        peer.answered()
        await peer.close()

    async with Server([until_close, ok(b"second")]) as server, using(client()) as http:
        assert await body_of(http, server.url()) == b"part one, part two"
        assert await body_of(http, server.url()) == b"second"
        assert (server.connections, len(server.requests)) == (2, 2)


# --- 4. encodings ---------------------------------------------------------------------------------


async def test_gzip_and_deflate_bodies_are_decoded():
    text = b"the same words again and again " * 200
    answers = [
        ok(gzip.compress(text), "Content-Encoding: gzip"),
        ok(zlib.compress(text), "Content-Encoding: deflate"),
        chunked(*(lambda z: [z[:10], z[10:50], z[50:]])(gzip.compress(text)), extra=("Content-Encoding: GZIP",)),
    ]
    async with Server(answers) as server, using(client()) as http:
        for _ in answers:
            assert await body_of(http, server.url()) == text
        assert server.connections == 1


async def test_an_unknown_content_encoding_is_refused():
    async with Server([ok(b"xx", "Content-Encoding: br"), ok()]) as server, using(client()) as http:
        with pytest.raises(ResponseError, match="content-encoding 'br' is not supported"):
            await http.post(server.url(), b"{}", {})
        assert await body_of(http, server.url()) == b"ok"
        assert (server.connections, len(server.requests)) == (2, 2)  # the refused answer's connection closed


async def test_a_transfer_coding_besides_chunked_is_refused_not_handed_out_encoded():
    compressed = gzip.compress(b"plain text")
    answer = chunked(compressed, extra=()).replace(b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked")
    async with Server([answer]) as server, using(client()) as http:
        with pytest.raises(ResponseError, match="transfer-encoding is not supported"):
            await body_of(http, server.url())


async def test_a_compressed_body_cut_short_is_an_error_not_a_shorter_body():
    compressed = gzip.compress(bytes(range(256)) * 64)

    async def cut_until_close(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + compressed[: len(compressed) // 2])
        peer.answered()
        await peer.close()

    async with Server([cut_until_close]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        got, error = await read_to_cut(response)
        response.release()
        assert str(error) == CUT
        assert (bytes(range(256)) * 64).startswith(got)


async def test_a_framed_body_whose_compressed_stream_ends_early_is_an_error():
    compressed = gzip.compress(b"x" * 5000)[:-8]  # without gzip's trailer: its checksum and length
    answers = [ok(compressed, "Content-Encoding: gzip"), chunked(compressed, extra=("Content-Encoding: gzip",)), ok()]
    async with Server(answers) as server, using(client()) as http:
        for _ in range(2):
            response = await http.post(server.url(), b"{}", {})
            with pytest.raises(ResponseError, match="compressed body is incomplete"):
                await response.read_all(10_000)
            response.release()
        assert await body_of(http, server.url()) == b"ok"
        assert (server.connections, len(server.requests)) == (3, 3)


# --- 5. cuts --------------------------------------------------------------------------------------


async def test_a_content_length_body_cut_hands_out_what_came_then_fails():
    async def cut(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ndata: one\n\ndata: tw")
        peer.answered()
        await peer.close()

    async with Server([cut]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        got, error = await read_to_cut(response)
        assert (got, str(error)) == (b"data: one\n\ndata: tw", CUT)
        with pytest.raises(ResponseError, match=CUT):
            await response.read()  # the error stays
        response.release()


async def test_a_chunked_body_cut_mid_chunk_hands_out_what_came_then_fails():
    async def cut(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n10\r\n0123", per_write=5)
        peer.answered()
        await peer.close()

    async with Server([cut]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        got, error = await read_to_cut(response)
        response.release()
        assert (got, str(error)) == (b"abcd0123", CUT)


async def test_a_head_cut_is_an_error():
    async def cut(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Le")
        peer.answered()
        await peer.close()

    async with Server([cut]) as server, using(client()) as http:
        with pytest.raises(ResponseError, match="closed before the response head"):
            await http.post(server.url(), b"{}", {})
        assert len(server.requests) == 1


# --- 6. stale pooled connections and unanswered requests ------------------------------------------


async def test_a_pooled_connection_the_server_closed_while_idle_is_replaced():
    async def answer_then_close(peer: Peer) -> None:
        await peer.answer(ok(b"first"))
        await peer.close()

    async with Server([answer_then_close, ok(b"second")]) as server, using(client()) as http:
        assert await body_of(http, server.url()) == b"first"
        await server.until(lambda: server.closed == 1)
        assert await body_of(http, server.url()) == b"second"
        assert (server.connections, len(server.requests)) == (2, 2)


async def test_a_reused_connection_closed_before_any_answer_byte_is_retried_once_on_a_new_one():
    """The race itself, made certain: the server's close crosses the client's next request on the wire."""

    async def close_at_next_request(peer: Peer) -> None:
        await peer.answer(ok(b"first"))
        await peer.reader.read(1)  # the next request began to arrive; drop it unanswered
        server.requests.append(b"<dropped>")
        await peer.close()

    async with Server([close_at_next_request, ok(b"second")]) as server, using(client()) as http:
        assert await body_of(http, server.url()) == b"first"
        assert await body_of(http, server.url()) == b"second"
        assert server.connections == 2
        assert [request[:4] for request in server.requests] == [b"POST", b"<dro", b"POST"]


async def test_a_fresh_connection_closed_without_an_answer_fails_without_a_retry():
    async def close(peer: Peer) -> None:
        peer.answered()
        await peer.close()

    async with Server([close]) as server, using(client()) as http:
        with pytest.raises(ResponseError, match="closed before the response head"):
            await http.post(server.url(), b"{}", {})
        await server.until(lambda: server.closed == 1)
        assert (server.connections, len(server.requests)) == (1, 1)


async def test_a_reused_connection_closed_after_an_answer_byte_fails_without_a_retry():
    async def half_head_then_close(peer: Peer) -> None:
        await peer.send(b"HTTP/1.")
        peer.answered()
        await peer.close()

    async with Server([ok(b"first"), half_head_then_close]) as server, using(client()) as http:
        assert await body_of(http, server.url()) == b"first"
        with pytest.raises(ResponseError, match="closed before the response head"):
            await http.post(server.url(), b"{}", {})
        assert (server.connections, len(server.requests)) == (1, 2)


async def test_an_idle_connection_past_its_keepalive_is_not_reused():
    async with Server() as server, using(client(keepalive_s=0)) as http:
        await body_of(http, server.url())
        await body_of(http, server.url())
        assert (server.connections, len(server.requests)) == (2, 2)


# --- 7. timeouts and connect failures -------------------------------------------------------------


async def stall(peer: Peer) -> None:
    await peer.until_client_closes()


async def test_a_server_that_never_answers_times_out():
    async with Server([stall]) as server, using(client(read_timeout_s=0.2)) as http:
        with pytest.raises(TimeoutError):
            await http.post(server.url(), b"{}", {})
        await server.until(lambda: server.closed == 1)  # the client closed its connection
        assert (server.connections, len(server.requests)) == (1, 1)


async def test_a_server_stalling_mid_body_times_out():
    async def stall_mid_body(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
        await peer.until_client_closes()

    async with Server([stall_mid_body]) as server, using(client(read_timeout_s=0.2)) as http:
        response = await http.post(server.url(), b"{}", {})
        assert await response.read() == b"01234"
        with pytest.raises(TimeoutError):
            await response.read()
        response.release()
        await server.until(lambda: server.closed == 1)


async def test_a_closed_port_is_a_connect_error():
    async with Server() as server:
        url = server.url()
    async with using(client()) as http:
        with pytest.raises(ConnectError, match=r"cannot connect to 127\.0\.0\.1:\d+: ConnectionRefusedError"):
            await http.post(url, b"{}", {})


async def test_a_tls_handshake_that_never_ends_is_a_connect_timeout():
    """A deterministic connect timeout on loopback: the TCP connect succeeds, the TLS handshake never does."""
    async with Server(handle=stall) as server, using(client(connect_timeout_s=0.2)) as http:
        with pytest.raises(ConnectError, match="timed out"):
            await http.post(server.url(scheme="https"), b"{}", {})
        await server.until(lambda: server.closed == 1)
        assert server.connections == 1


async def test_a_tcp_connect_that_is_never_accepted_is_a_connect_timeout():
    """Linux drops a SYN when the listener's accept queue is full; the connect then waits for retransmits."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(2):  # backlog 0 queues one connection; the second one's handshake is left pending
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        async with using(client(connect_timeout_s=0.3)) as http:
            try:
                await http.post(f"http://127.0.0.1:{port}/", b"{}", {})
            except ConnectError as error:
                if "timed out" not in str(error):
                    pytest.skip(f"this kernel refuses instead of dropping: {error}")
            else:
                pytest.skip("this kernel accepted past the backlog")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


# --- 8. header injection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "v\r\nX-Injected: 1"},
        {"X-A": "v\nX-Injected: 1"},
        {"X-A": "v\r"},
        {"X-A": "v\0"},
        {"X-A\r\nX-Injected": "1"},
        {"X-A\n": "1"},
        {"X-A: b\r\n\r\nGET /": "1"},
        {"X-A": "k\u20ac"},  # not latin-1
    ],
)
async def test_a_header_with_a_forbidden_character_is_refused_before_anything_is_sent(headers):
    async with Server() as server, using(client()) as http:
        with pytest.raises(HttpError) as raised:
            await http.post(server.url(), b"{}", {"Authorization": "Bearer secret-key", **headers})
        assert "secret-key" not in str(raised.value)
        assert await body_of(http, server.url(), b"{}", {"X-A": "fine"}) == b"ok"
        await http.close()
        await server.until(lambda: server.closed == server.connections)
        assert (server.connections, len(server.requests), bytes(server.leftover)) == (1, 1, b"")
        assert b"Injected" not in server.requests[0] and b"secret-key" not in server.requests[0]


# --- 9. informational answers and malformed heads -------------------------------------------------


async def test_informational_answers_before_the_real_one_are_skipped():
    async def early(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        await peer.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\n")
        await peer.answer(b"Content-Length: 4\r\nX-Real: 1\r\n\r\ndone")

    async with Server([early, ok()]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        assert (response.status, dict(response.headers)) == (201, {"content-length": "4", "x-real": "1"})
        assert await response.read_all(10) == b"done"
        response.release()
        assert await body_of(http, server.url()) == b"ok"
        assert server.connections == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", "malformed status line"),
        (b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", "malformed status line"),
        (b"ICY 200 OK\r\n\r\n", "malformed status line"),
        (b"\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\n folded: x\r\nContent-Length: 0\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", "malformed content-length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "malformed content-length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "malformed content-length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "malformed content-length"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 10), "head is too large"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n", "head is too large"),
    ],
)
async def test_a_malformed_head_is_a_response_error(answer, message):
    async def malformed(peer: Peer) -> None:
        await peer.send(answer)
        await peer.until_client_closes()  # the client must judge on what came, not on the connection's end

    async with Server([malformed]) as server, using(client()) as http:
        with pytest.raises(ResponseError, match=message):
            await http.post(server.url(), b"{}", {})
        await server.until(lambda: server.closed == 1)


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nab",
        b"zz\r\nab\r\n0\r\n\r\n",
        b"2\r\nabXY0\r\n\r\n",
        b"-2\r\nab\r\n0\r\n\r\n",
        b"2\r\nab\r\n" + b"9" * 5000,
    ],
)
async def test_a_malformed_chunk_is_a_response_error(body):
    async def malformed(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        if body == b"5\r\nab":
            await peer.close()
        await peer.until_client_closes()

    async with Server([malformed]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        with pytest.raises(ResponseError, match=r"malformed chunk|closed before the response was complete"):
            while await response.read():
                pass
        response.release()
        await server.until(lambda: server.closed == 1)


# --- 10. size limits ------------------------------------------------------------------------------


async def test_read_all_refuses_a_content_length_over_the_limit_before_reading_it():
    async def head_only(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        await peer.until_client_closes()  # the body never comes: reading it would time out

    async with Server([head_only]) as server, using(client(read_timeout_s=WAIT_S)) as http:
        response = await http.post(server.url(), b"{}", {})
        with pytest.raises(BodyTooLarge, match="larger than 999 bytes") as raised:
            await response.read_all(999)
        assert raised.value.limit == 999
        response.release()
        await server.until(lambda: server.closed == 1)  # an unread body: not reused


async def test_read_all_refuses_a_chunked_body_over_the_limit():
    async def first_chunk_then_wait(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\naaaaaa\r\n")
        await peer.until_client_closes()  # the client gives up on the rest

    answers = [first_chunk_then_wait, chunked(b"a" * 6, b"b" * 6)]
    async with Server(answers) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        with pytest.raises(BodyTooLarge):
            await response.read_all(5)
        response.release()
        await server.until(lambda: server.closed == 1)
        response = await http.post(server.url(), b"{}", {})
        assert await response.read_all(12) == b"a" * 6 + b"b" * 6  # exactly the limit is allowed
        response.release()
        assert (server.connections, len(server.requests)) == (2, 2)


async def test_read_all_refuses_a_decoded_body_over_the_limit():
    async with Server([ok(gzip.compress(b"z" * 10_000), "Content-Encoding: gzip")]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        with pytest.raises(BodyTooLarge):
            await response.read_all(9_999)
        response.release()


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (chunked(b"abc", extra=("Content-Length: 1, 1",)), b"abc"),  # the chunks decide, the length is ignored
        (chunked(b"abc", extra=("Content-Length: 5000",)), b"abc"),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5000\r\n\r\n", b""),  # the length of a body not sent
    ],
)
async def test_read_all_judges_the_body_by_its_framing_not_a_content_length_that_does_not_frame_it(answer, body):
    async with Server([answer, ok()]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        try:
            assert await response.read_all(10) == body
        finally:
            response.release()
        assert await body_of(http, server.url()) == b"ok"


# --- 11. the connection cap and cancellation ------------------------------------------------------


async def test_with_one_connection_a_second_post_waits_for_the_first_release():
    first_done = asyncio.Event()

    async def slow(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfi")
        await first_done.wait()
        await peer.answer(b"rst")

    async with Server([slow, ok(b"second")]) as server, using(client(max_connections=1)) as http:
        first = await http.post(server.url(), b"{}", {})
        second = asyncio.create_task(body_of(http, server.url()))
        # A negative: nothing must happen. A slow machine can only make this check weaker, never fail it.
        done, _ = await asyncio.wait({second}, timeout=0.3)
        assert not done and len(server.requests) == 1
        first_done.set()
        assert await first.read_all(5) == b"first"
        await server.until(lambda: server.in_flight == 0)
        assert len(server.requests) == 1 and not second.done()  # read, not released: still the first's
        first.release()
        assert await second == b"second"
        assert (server.connections, len(server.requests), server.max_in_flight) == (1, 2, 1)


async def test_a_cancelled_read_gives_back_its_slot_and_closes_its_connection():
    async def stall_mid_body(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
        await peer.until_client_closes()

    async with Server([stall_mid_body, ok(b"next")]) as server, using(client(max_connections=1)) as http:
        response = await http.post(server.url(), b"{}", {})
        assert await response.read() == b"01234"

        async def read_then_release() -> None:
            try:
                await response.read()
            finally:
                response.release()

        reading = asyncio.create_task(read_then_release())
        await asyncio.sleep(0)  # let it reach its wait (ordering, not timing)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        await server.until(lambda: server.closed == 1)
        assert await body_of(http, server.url()) == b"next"
        assert (server.connections, len(server.requests)) == (2, 2)


async def test_a_post_cancelled_while_waiting_for_the_head_gives_back_its_slot():
    async with Server([stall, ok(b"next")]) as server, using(client(max_connections=1)) as http:
        posting = asyncio.create_task(http.post(server.url(), b"{}", {}))
        await server.until(lambda: len(server.requests) == 1)
        posting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await posting
        await server.until(lambda: server.closed == 1)
        assert await body_of(http, server.url()) == b"next"
        assert (server.connections, len(server.requests)) == (2, 2)


async def test_a_failed_post_gives_back_its_slot():
    async with Server([b"garbage\r\n\r\n", ok(b"next")]) as server, using(client(max_connections=1)) as http:
        with pytest.raises(ResponseError):
            await http.post(server.url(), b"{}", {})
        assert await body_of(http, server.url()) == b"next"


async def test_twenty_posts_over_four_connections_reuse_exactly_those_four():
    async def first_four_together(peer: Peer) -> None:
        number = len(peer.server.requests)
        if number <= 4:  # the first four are answered once all four are in: the cap is reached for sure
            await peer.server.until(lambda: len(peer.server.requests) >= 4)
        await peer.answer(ok(b"%d" % number))

    async with Server([first_four_together] * 20) as server, using(client(max_connections=4)) as http:
        bodies = await asyncio.gather(*(body_of(http, server.url()) for _ in range(20)))
        assert sorted(int(body) for body in bodies) == list(range(1, 21))
        assert (server.connections, len(server.requests), server.max_in_flight) == (4, 20, 4)


# --- 12. what is not reused -----------------------------------------------------------------------


async def test_a_response_released_before_its_body_was_read_closes_its_connection():
    async with Server([ok(b"unread"), ok(b"next")]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        response.release()
        await server.until(lambda: server.closed == 1)
        assert await body_of(http, server.url()) == b"next"
        assert (server.connections, len(server.requests)) == (2, 2)


async def test_bytes_after_a_complete_body_stop_reuse():
    async with Server([ok(b"body") + b"HTTP/1.1 200 OK\r\n", ok(b"next")]) as server, using(client()) as http:
        assert await body_of(http, server.url()) == b"body"
        assert await body_of(http, server.url()) == b"next"
        assert (server.connections, len(server.requests)) == (2, 2)


async def test_bytes_after_a_complete_body_that_come_late_stop_reuse():
    got_first = asyncio.Event()

    async def late_garbage(peer: Peer) -> None:
        await peer.answer(ok(b"body"))
        await got_first.wait()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\n")
        await peer.until_client_closes()

    async with Server([late_garbage, ok(b"next")]) as server, using(client()) as http:
        assert await body_of(http, server.url()) == b"body"
        got_first.set()
        await server.until(lambda: server.closed == 1)  # the idle connection got bytes: the client closed it
        assert await body_of(http, server.url()) == b"next"
        assert (server.connections, len(server.requests)) == (2, 2)


async def test_connection_close_is_honoured():
    async with Server([ok(b"a", "Connection: close"), ok(b"b")]) as server, using(client()) as http:
        assert await body_of(http, server.url()) == b"a"
        assert await body_of(http, server.url()) == b"b"
        assert server.connections == 2


async def test_releasing_twice_leaves_the_pooled_connection_alone():
    async with Server([ok(b"a"), ok(b"b"), ok(b"c")]) as server, using(client()) as http:
        first = await http.post(server.url(), b"{}", {})
        assert await first.read_all(10) == b"a"
        first.release()
        second = await http.post(server.url(), b"{}", {})  # the same connection, now the second's
        first.release()  # a caller's mistake must not close it under the second
        assert await second.read_all(10) == b"b"
        second.release()
        assert await body_of(http, server.url()) == b"c"
        assert (server.connections, len(server.requests)) == (1, 3)


async def test_reading_a_released_response_is_an_error_not_the_next_answer():
    async with Server([ok(b"a"), ok(b"b")]) as server, using(client()) as http:
        first = await http.post(server.url(), b"{}", {})
        assert await first.read_all(10) == b"a"
        first.release()
        second = await http.post(server.url(), b"{}", {})  # the same connection, now the second's
        with pytest.raises(HttpError, match="released"):
            await first.read()
        assert await second.read_all(10) == b"b"
        second.release()
        assert server.connections == 1


async def test_closing_the_client_closes_its_pooled_connections():
    async with Server() as server:
        http = client()
        await body_of(http, server.url())
        await http.close()
        await server.until(lambda: server.closed == 1)
        assert (server.connections, len(server.requests)) == (1, 1)


async def test_header_names_are_lowercase_and_repeated_headers_joined():
    answer = ok(b"x", "X-Rate: 1", "x-RATE: 2", "Set-Cookie: a=1", "Empty:", "Spaced:  \t v \t")
    async with Server([answer]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        response.release()
        assert dict(response.headers) == {
            "content-length": "1",
            "x-rate": "1, 2",
            "set-cookie": "a=1",
            "empty": "",
            "spaced": "v",
        }


# --- 13. TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1 only: the server's context and a client's trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llmagg test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    trusting = ssl.create_default_context(cafile=str(cert_file))
    return server, trusting


async def test_https_with_a_trusted_certificate_works_and_reuses(tls):
    server_context, trusting = tls
    text = b"secret words " * 1000
    answers = [ok(b"one"), chunked(text[:5000], text[5000:]), ok(gzip.compress(text), "Content-Encoding: gzip")]
    async with Server(answers, ssl_context=server_context) as server, using(client(ssl_context=trusting)) as http:
        assert await body_of(http, server.url()) == b"one"
        assert await body_of(http, server.url()) == text
        assert await body_of(http, server.url()) == text
        assert (server.connections, len(server.requests)) == (1, 3)


async def test_https_to_a_name_the_certificate_does_not_carry_is_a_connect_error(tls):
    server_context, trusting = tls
    async with Server(ssl_context=server_context) as server, using(client(ssl_context=trusting)) as http:
        with pytest.raises(ConnectError, match="SSLCertVerificationError"):
            await http.post(server.url(host="localhost"), b"{}", {})
        assert server.requests == []


async def test_https_with_an_untrusted_certificate_is_a_connect_error(tls):
    server_context, _ = tls
    async with Server(ssl_context=server_context) as server, using(client()) as http:
        with pytest.raises(ConnectError, match="SSLCertVerificationError"):
            await http.post(server.url(), b"{}", {})
        assert server.requests == []


async def test_https_stale_connection_replaced_and_a_body_until_close(tls):
    server_context, trusting = tls

    async def answer_then_close(peer: Peer) -> None:
        await peer.answer(ok(b"first"))
        await peer.close()

    async def until_close(peer: Peer) -> None:
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
        peer.answered()
        await peer.close()

    answers = [answer_then_close, until_close, ok(b"third")]
    async with Server(answers, ssl_context=server_context) as server, using(client(ssl_context=trusting)) as http:
        assert await body_of(http, server.url()) == b"first"
        await server.until(lambda: server.closed == 1)
        assert await body_of(http, server.url()) == b"until the end"
        assert await body_of(http, server.url()) == b"third"
        assert (server.connections, len(server.requests)) == (3, 3)


# --- 14. bodiless and HTTP/1.0 answers ------------------------------------------------------------


async def test_a_204_has_no_body_and_its_connection_is_reused():
    async with Server([b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", ok(b"next")]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        assert (response.status, await response.read(), await response.read_all(0)) == (204, b"", b"")
        response.release()
        assert await body_of(http, server.url()) == b"next"
        assert (server.connections, len(server.requests)) == (1, 2)


async def test_an_http_1_0_answer_is_not_reused():
    answers = [ok(b"old", "Connection: keep-alive", version="HTTP/1.0"), ok(b"next")]
    async with Server(answers) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        assert (response.status, await response.read_all(10)) == (200, b"old")
        response.release()
        await server.until(lambda: server.closed == 1)
        assert await body_of(http, server.url()) == b"next"
        assert (server.connections, len(server.requests)) == (2, 2)


async def test_an_error_status_is_an_answer_not_an_exception():
    answer = ok(b'{"error":"no"}', status="429 Too Many Requests")
    async with Server([answer, ok()]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        assert (response.status, await response.read_all(100)) == (429, b'{"error":"no"}')
        response.release()
        assert await body_of(http, server.url()) == b"ok"
        assert server.connections == 1


# --- the production loop --------------------------------------------------------------------------

ON_UVLOOP = [
    test_a_content_length_body_and_two_posts_on_one_connection,
    test_chunks_with_extensions_and_trailers_one_byte_per_write,
    test_five_mib_of_chunks_read_slowly_pause_the_connection_and_arrive_intact,
    test_a_body_until_close_is_read_whole_and_its_connection_not_reused,
    test_a_compressed_body_cut_short_is_an_error_not_a_shorter_body,
    test_a_content_length_body_cut_hands_out_what_came_then_fails,
    test_a_chunked_body_cut_mid_chunk_hands_out_what_came_then_fails,
    test_a_pooled_connection_the_server_closed_while_idle_is_replaced,
    test_a_reused_connection_closed_before_any_answer_byte_is_retried_once_on_a_new_one,
    test_a_fresh_connection_closed_without_an_answer_fails_without_a_retry,
    test_a_server_stalling_mid_body_times_out,
    test_a_tls_handshake_that_never_ends_is_a_connect_timeout,
    test_a_cancelled_read_gives_back_its_slot_and_closes_its_connection,
    test_twenty_posts_over_four_connections_reuse_exactly_those_four,
    test_bytes_after_a_complete_body_that_come_late_stop_reuse,
    test_https_with_a_trusted_certificate_works_and_reuses,
    test_https_stale_connection_replaced_and_a_body_until_close,
]


@pytest.mark.parametrize("case", ON_UVLOOP, ids=lambda case: case.__name__.removeprefix("test_"))
def test_on_uvloop(case, tls):
    """The router serves on uvloop, whose transports pause, resume and report a close their own way."""
    uvloop = pytest.importorskip("uvloop")
    scenario = case(tls) if "tls" in case.__code__.co_varnames[: case.__code__.co_argcount] else case()
    with concurrent.futures.ThreadPoolExecutor(1) as thread:  # a loop of its own, beside the session's
        thread.submit(uvloop.run, scenario).result(timeout=60)
