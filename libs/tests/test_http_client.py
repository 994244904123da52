"""The providers' HTTP/1.1 client against real loopback servers that answer byte-exact scripts: the
request as sent, framing (length, chunks, until close), encodings, cuts, malformed answers, header
injection, the size limits. Reuse, timeouts, the connection cap and TLS: test_http_client_pool.py."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest

from llmagg.common.http_client import (
    MAX_HEAD_BYTES,
    BodyTooLarge,
    HttpError,
    ResponseError,
)

from .http_peers import CUT, WAIT_S, Peer, Server, body_of, chunked, client, ok, read_to_cut, then_close, using


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
            + b'Accept-Encoding: identity\r\n\r\n{"a":1}'
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
        head = b"POST /v1 HTTP/1.1\r\nHost: 127.0.0.91\r\nContent-Length: 0\r\nAccept-Encoding: identity\r\n\r\n"
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
    [
        "ftp://127.0.0.1/",
        "http:///no-host",
        "127.0.0.1:80/",
        "http://h:99999/",
        "http://h:abc/",
        "http://[::1/",
        "http://a..b/",
        f"http://{'a' * 70}.example/",  # host names IDNA cannot encode
    ],
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


async def test_a_compressed_piece_that_inflates_past_any_answer_is_refused_not_held():
    bomb = gzip.compress(b"\0" * (65 * 1024 * 1024))  # ~64 KiB that would take 65 MiB of memory
    async with Server([ok(bomb, "Content-Encoding: gzip")]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        with pytest.raises(ResponseError, match="inflates beyond"):
            await response.read_all(1 << 30)
        response.release()


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
        with pytest.raises(ResponseError, match="content-encoding is not supported"):
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

    cut_until_close = then_close(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + compressed[: len(compressed) // 2]
    )

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
    cut = then_close(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ndata: one\n\ndata: tw")

    async with Server([cut]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        got, error = await read_to_cut(response)
        assert (got, str(error)) == (b"data: one\n\ndata: tw", CUT)
        with pytest.raises(ResponseError, match=CUT):
            await response.read()  # the error stays
        response.release()


async def test_a_chunked_body_cut_mid_chunk_hands_out_what_came_then_fails():
    cut = then_close(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n10\r\n0123", per_write=5)

    async with Server([cut]) as server, using(client()) as http:
        response = await http.post(server.url(), b"{}", {})
        got, error = await read_to_cut(response)
        response.release()
        assert (got, str(error)) == (b"abcd0123", CUT)


async def test_a_head_cut_is_an_error():
    cut = then_close(b"HTTP/1.1 200 OK\r\nContent-Le")

    async with Server([cut]) as server, using(client()) as http:
        with pytest.raises(ResponseError, match="closed before the response head"):
            await http.post(server.url(), b"{}", {})
        assert len(server.requests) == 1


# --- 6. stale pooled connections and unanswered requests ------------------------------------------


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
        (b"HTTP/1.1 2\xb20 OK\r\nContent-Length: 0\r\n\r\n", "malformed status line"),  # a superscript two
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
