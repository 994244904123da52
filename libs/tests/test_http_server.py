"""The data port's HTTP/1.1 server: bodies by length or in chunks, keep-alive, limits, streamed answers,
a client going away, a graceful stop."""

from __future__ import annotations

import asyncio

import pytest

from llmagg.common.http_server import MAX_HEAD_BYTES, HttpServer, Request, Response


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()
        self.received = asyncio.Event()

    async def handle(self, request: Request) -> Response:
        self.requests.append(request)
        self.received.set()
        if request.path == "/slow":
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if request.path == "/fail":
            raise RuntimeError("a bug")
        if request.path == "/stream":

            async def events():
                for piece in (b"one", b"", b"two"):
                    yield piece

            return Response(200, [("content-type", "text/event-stream")], stream=events())
        return Response(200, [("content-type", "text/plain")], b"got " + request.body)


def admit(head: Request) -> Response | None:
    return Response(401, [("content-type", "text/plain")], b"no") if head.headers.get("x-refuse") else None


@pytest.fixture
async def served():
    recorder = Recorder()
    server = HttpServer(recorder.handle, lambda status, message: f"{status} {message}".encode(), 64, admit=admit)
    port = await server.start("127.0.0.1", 0)
    yield server, port, recorder
    await server.stop(1)


async def talk(port: int, data: bytes, until: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    received = b""
    while until not in received or not until:
        piece = await asyncio.wait_for(reader.read(65536), 5)
        if not piece:
            break
        received += piece
    writer.close()
    return received


async def test_bodies_by_length_and_in_chunks_on_one_kept_alive_connection(served):
    _, port, recorder = served
    answer = await talk(
        port,
        b"POST /a HTTP/1.1\r\ncontent-length: 5\r\nX-Thing: 1\r\n\r\nhello"
        b"POST /b HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
        until=b"got abcde",
    )
    assert answer == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\ngot hello"
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\ngot abcde"
    )
    assert [(r.method, r.path, r.headers.get("x-thing")) for r in recorder.requests] == [
        ("POST", "/a", "1"),
        ("POST", "/b", None),
    ]


async def test_a_streamed_answer_goes_out_in_chunks_empty_pieces_skipped(served):
    _, port, _ = served
    answer = await talk(port, b"POST /stream HTTP/1.1\r\ncontent-length: 0\r\n\r\n", until=b"0\r\n\r\n")
    assert answer.endswith(b"transfer-encoding: chunked\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        # Over the limit: read to its end (the client is not cut off while sending), then refused.
        (b"POST /a HTTP/1.1\r\ncontent-length: 65\r\n\r\n" + b"x" * 65, b"413"),
        (b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n41\r\n" + b"x" * 65 + b"\r\n0\r\n\r\n", b"413"),
        (b"POST /a HTTP/1.1\r\ncontent-length: 257\r\n\r\n", b"413"),  # far over: refused at once
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\ncontent-length: -1\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\nbroken header\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\nx: " + b"y" * MAX_HEAD_BYTES + b"\r\n\r\n", b"431"),
        (b"POST /a HTTP/1.0\r\ncontent-length: 0\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\ncontent-length: +1\r\n\r\nx", b"400"),
        (b"POST /a HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\nx", b"400"),
        (b"POST /a HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n", b"501"),
        (b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0x1\r\nx\r\n0\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\nbad name: 1\r\n\r\n", b"400"),
    ],
)
async def test_a_malformed_or_oversized_request_gets_its_status_and_the_connection_closes(served, data, status):
    _, port, recorder = served
    answer = await talk(port, data)  # read until the server closes
    assert answer.startswith(b"HTTP/1.1 " + status) and b"connection: close" in answer
    assert recorder.requests == []


async def test_a_client_going_away_cancels_its_request(served):
    _, port, recorder = served
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /slow HTTP/1.1\r\ncontent-length: 0\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(recorder.received.wait(), 5)
    writer.close()
    await asyncio.wait_for(recorder.cancelled.wait(), 5)


async def test_a_stop_lets_a_request_under_way_finish_and_takes_no_new_connection(served):
    server, port, recorder = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /slow HTTP/1.1\r\ncontent-length: 0\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(recorder.received.wait(), 5)
    stopping = asyncio.create_task(server.stop(5))
    await asyncio.sleep(0)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    recorder.release.set()
    assert (await asyncio.wait_for(reader.read(), 5)).endswith(b"\r\n\r\ngot ")  # answered, then closed
    await asyncio.wait_for(stopping, 5)
    assert not recorder.cancelled.is_set()


async def test_a_request_refused_on_its_head_is_answered_before_its_body_is_read(served):
    _, port, recorder = served
    answer = await talk(port, b"POST /a HTTP/1.1\r\nx-refuse: 1\r\ncontent-length: 1000000\r\n\r\n")
    assert (
        answer
        == b"HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
    )
    assert recorder.requests == []


async def test_a_handler_failing_before_its_answer_is_a_500_and_the_connection_closes(served):
    _, port, _ = served
    answer = await talk(port, b"POST /fail HTTP/1.1\r\ncontent-length: 0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ") and answer.endswith(
        b"500 The server had an error while processing your request."
    )


@pytest.fixture
async def impatient():
    """A server with short idle and head timeouts (what is tested here is those timeouts)."""
    recorder = Recorder()
    server = HttpServer(
        recorder.handle,
        lambda status, message: f"{status} {message}".encode(),
        64,
        idle_timeout_s=0.3,
        head_timeout_s=0.3,
    )
    port = await server.start("127.0.0.1", 0)
    yield server, port, recorder
    await server.stop(1)


async def read_to_close(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 10)  # until the server closes the connection


async def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(impatient):
    server, port, recorder = impatient
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await read_to_close(reader) == b""
    assert recorder.requests == [] and not server.connections
    writer.close()


async def test_a_connection_idle_after_its_answer_is_closed_after_the_idle_timeout(impatient):
    _, port, recorder = impatient
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /a HTTP/1.1\r\ncontent-length: 2\r\n\r\nhi")
    answer = await read_to_close(reader)
    assert answer == b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\n\r\ngot hi"
    assert len(recorder.requests) == 1
    writer.close()


async def test_a_head_that_does_not_come_whole_in_time_gets_a_408_and_the_handler_never_runs(impatient):
    _, port, recorder = impatient
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /a HTTP/1.1\r\ncontent-le")  # a slow client (or slowloris) stalls mid-head
    answer = await read_to_close(reader)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and answer.endswith(
        b"\r\n\r\n408 The request's head did not arrive in time."
    )
    assert b"connection: close" in answer and recorder.requests == []
    writer.close()


async def test_a_head_in_pieces_within_the_timeout_and_a_handler_slower_than_both_timeouts_are_served(impatient):
    _, port, recorder = impatient
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /slow HTTP/1.1\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)  # the time that passes is what is tested: within the head timeout
    writer.write(b"content-length: 2\r\n\r\nhi")
    await asyncio.wait_for(recorder.received.wait(), 10)
    await asyncio.sleep(0.9)  # three idle timeouts while the handler works: no timer may end the request
    recorder.release.set()
    answer = await read_to_close(reader)  # then idle: closed
    assert answer == b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\n\r\ngot hi"
    writer.close()


async def test_the_work_after_an_answer_runs_once_it_is_on_the_wire_and_its_failure_harms_nothing(caplog):
    import socket

    client: socket.socket | None = None
    seen: list[bytes] = []
    ran = asyncio.Condition()

    async def handle(request: Request) -> Response:
        def after() -> None:
            assert client is not None
            seen.append(client.recv(65536))  # what the client has when the work runs: the whole answer
            asyncio.get_running_loop().create_task(notify())
            if request.path == "/bad":
                raise RuntimeError("a bug after the answer")

        return Response(200, [("content-type", "text/plain")], b"answer to " + request.path.encode(), after=after)

    async def notify() -> None:
        async with ran:
            ran.notify_all()

    server = HttpServer(handle, lambda status, message: b"", 64)
    port = await server.start("127.0.0.1", 0)
    try:
        client = socket.create_connection(("127.0.0.1", port))
        client.settimeout(2)  # the answer is there already: a timeout here says the work came first
        for count, path in enumerate((b"/bad", b"/good"), 1):  # one connection: the first's failure harms nothing
            client.sendall(b"GET " + path + b" HTTP/1.1\r\ncontent-length: 0\r\n\r\n")
            async with asyncio.timeout(5), ran:
                await ran.wait_for(lambda count=count: len(seen) == count)
    finally:
        if client is not None:
            client.close()
        await server.stop(1)
    assert seen == [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 14\r\n\r\nanswer to /bad",
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 15\r\n\r\nanswer to /good",
    ]
    assert "the work after an HTTP answer failed" in caplog.text


async def test_a_streams_first_piece_goes_out_at_once_and_the_pieces_of_one_step_together():
    writes: list[bytes] = []
    release = asyncio.Event()

    class Recording:
        """The connection's transport, noting each write."""

        def __init__(self, transport: asyncio.Transport) -> None:
            self._transport = transport

        def write(self, data: bytes) -> None:
            writes.append(bytes(data))
            self._transport.write(data)

        def __getattr__(self, name: str):
            return getattr(self._transport, name)

    async def handle(request: Request) -> Response:
        [connection] = server.connections
        connection._transport = Recording(connection._transport)  # type: ignore[attr-defined]

        async def events():
            yield b"one"
            yield b"two"  # the same step as "three": they go out together when it ends
            yield b"three"
            await release.wait()
            yield b"four"

        return Response(200, [("content-type", "text/event-stream")], stream=events())

    server = HttpServer(handle, lambda status, message: b"", 64)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /stream HTTP/1.1\r\ncontent-length: 0\r\n\r\n")
        async with asyncio.timeout(5):
            await reader.readuntil(b"5\r\nthree\r\n")  # while the stream waits
            assert [w.rpartition(b"\r\n\r\n")[2] if n == 0 else w for n, w in enumerate(writes)] == [
                b"3\r\none\r\n",
                b"3\r\ntwo\r\n5\r\nthree\r\n",
            ]
            release.set()
            await reader.readuntil(b"0\r\n\r\n")
        assert writes[2:] == [b"4\r\nfour\r\n0\r\n\r\n"]
        writer.close()
    finally:
        await server.stop(1)
