"""The providers' HTTP/1.1 client's pool against real loopback servers: reuse and its limits, a stale
connection replaced, timeouts, the connection cap, cancellation, release, TLS, and the main scenarios
again on uvloop (the router's loop)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import gzip
import ipaddress
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from llmagg.common.http_client import (
    ConnectError,
    HttpError,
    ResponseError,
)

from . import test_http_client as framing
from .http_peers import Peer, Server, body_of, chunked, client, ok, then_close, using


async def test_a_pooled_connection_the_server_closed_while_idle_is_replaced():
    answer_then_close = then_close(ok(b"first"))

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


async def test_after_one_stale_pooled_connection_the_request_goes_on_a_new_one_not_the_next_pooled():
    """A load balancer that dropped every idle connection at once: the request is sent twice at most."""

    async def answer_then_drop_the_next(peer: Peer) -> None:
        await peer.answer(ok(b"first"))
        await peer.reader.read(1)
        server.requests.append(b"<dropped>")
        await peer.close()

    async with (
        Server([answer_then_drop_the_next, answer_then_drop_the_next, ok(b"second")]) as server,
        using(client()) as http,
    ):
        held = [await http.post(server.url(), b"{}", {}) for _ in range(2)]  # two connections at once
        for response in held:
            assert await response.read_all(1 << 20) == b"first"
            response.release()
        assert await body_of(http, server.url()) == b"second"
        assert server.connections == 3
        assert [request[:4] for request in server.requests] == [b"POST", b"POST", b"<dro", b"POST"]


async def test_a_fresh_connection_closed_without_an_answer_fails_without_a_retry():
    close = then_close()

    async with Server([close]) as server, using(client()) as http:
        with pytest.raises(ResponseError, match="closed before the response head"):
            await http.post(server.url(), b"{}", {})
        await server.until(lambda: server.closed == 1)
        assert (server.connections, len(server.requests)) == (1, 1)


async def test_a_reused_connection_closed_after_an_answer_byte_fails_without_a_retry():
    half_head_then_close = then_close(b"HTTP/1.")

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

    until_close = then_close(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")

    answers = [answer_then_close, until_close, ok(b"third")]
    async with Server(answers, ssl_context=server_context) as server, using(client(ssl_context=trusting)) as http:
        assert await body_of(http, server.url()) == b"first"
        await server.until(lambda: server.closed == 1)
        assert await body_of(http, server.url()) == b"until the end"
        assert await body_of(http, server.url()) == b"third"
        assert (server.connections, len(server.requests)) == (3, 3)


# --- 14. bodiless and HTTP/1.0 answers ------------------------------------------------------------


# --- the production loop --------------------------------------------------------------------------

ON_UVLOOP = [
    framing.test_a_content_length_body_and_two_posts_on_one_connection,
    framing.test_chunks_with_extensions_and_trailers_one_byte_per_write,
    framing.test_five_mib_of_chunks_read_slowly_pause_the_connection_and_arrive_intact,
    framing.test_a_body_until_close_is_read_whole_and_its_connection_not_reused,
    framing.test_a_compressed_body_cut_short_is_an_error_not_a_shorter_body,
    framing.test_a_content_length_body_cut_hands_out_what_came_then_fails,
    framing.test_a_chunked_body_cut_mid_chunk_hands_out_what_came_then_fails,
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
