"""What every wire protocol shares on the wire: the pooled HTTP client, capped reads, lines salvaged
from a cut, transport errors, the key in the provider's auth style. Error answers: upstream_errors.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import aiohttp
import orjson

from llmagg.common.secrets import Secret
from llmagg.registry.auth import key_headers
from llmagg_router.domain.json_limits import too_deep
from llmagg_router.domain.upstream import Candidate, Failure, UpstreamError

_READ_CHUNK = 64 * 1024

Classify = Callable[[int, Mapping[str, str], bytes], UpstreamError]


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(Failure.BAD_RESPONSE, f"the provider sent an invalid JSON {what}") from None
    if not isinstance(parsed, dict):
        raise UpstreamError(Failure.BAD_RESPONSE, f"the provider sent a {what} that is not a JSON object")
    if too_deep(parsed, raw=raw):
        raise UpstreamError(Failure.BAD_RESPONSE, f"the provider sent a {what} nested too deeply")
    return parsed


def auth_headers(candidate: Candidate, key: Secret | None) -> dict[str, str]:
    """Content type, our user agent, and the key in the provider's auth style."""
    headers = {"Content-Type": "application/json", "User-Agent": "llm-aggregator/0.1"}
    return headers | key_headers(candidate.provider.auth, key)


def _buffered(content: aiohttp.StreamReader) -> bytes:
    """What the connection delivered before it broke.

    aiohttp stops handing out buffered bytes once the connection has failed; the last events an
    upstream sent before a cut are still in the buffer and must reach the client before the error.
    """
    return content._read_nowait(-1)


class HttpUpstream:
    """One connection pool for every provider and protocol; the session is created on the serving loop."""

    def __init__(
        self,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_connections: int = 512,
        max_response_bytes: int = 32 * 1024 * 1024,
        max_event_bytes: int = 2 * 1024 * 1024,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout_s, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._max_event_bytes = max_event_bytes
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
                timeout=self._timeout,
                trust_env=False,
                read_bufsize=2**20,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        """The whole body, refused (not cut) when it is over the limit a gRPC message can carry."""
        limit = self._max_response_bytes
        if resp.content_length is not None and resp.content_length > limit:
            raise self._too_large()
        body = bytearray()
        async for data in resp.content.iter_chunked(_READ_CHUNK):
            body += data
            if len(body) > limit:
                raise self._too_large()
        return bytes(body)

    def _too_large(self) -> UpstreamError:
        return UpstreamError(
            Failure.TOO_LARGE, f"the provider's answer is larger than {self._max_response_bytes} bytes"
        )

    async def post(
        self, url: str, payload: Any, headers: Mapping[str, str], classify: Classify
    ) -> tuple[bytes, Mapping[str, str]]:
        """POST JSON, return the whole 2xx body and the response's headers; any other status is raised
        as `classify` says."""
        with transport_errors():
            async with self._client().post(url, data=orjson.dumps(payload), headers=headers) as resp:
                raw = await self._read(resp)
                if resp.status >= 300:
                    raise classify(resp.status, resp.headers, raw)
        return raw, resp.headers

    async def open(
        self, url: str, payload: Any, headers: Mapping[str, str], classify: Classify
    ) -> aiohttp.ClientResponse:
        """POST JSON and return the 2xx response, open for streaming (the caller releases it); any other
        status is raised as `classify` says."""
        with transport_errors():
            resp = await self._client().post(url, data=orjson.dumps(payload), headers=headers)
        if resp.status < 300:
            return resp
        try:
            with transport_errors():
                raw = await self._read(resp)
            raise classify(resp.status, resp.headers, raw)
        finally:
            resp.release()

    async def lines(self, content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
        """The body's lines as they arrive; after a cut, every whole line that arrived before it, then the error."""
        pending = bytearray()
        while True:
            broken = False
            with transport_errors():
                try:
                    data = await content.readany()
                except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                    data, broken = _buffered(content), True
            if not data and not broken:
                if pending:
                    yield bytes(pending)  # the last line of a body that does not end in a newline
                return
            pending += data
            start = 0
            while (end := pending.find(b"\n", start)) != -1:
                yield bytes(pending[start:end])
                start = end + 1
            del pending[:start]
            if broken:
                raise UpstreamError(Failure.BAD_RESPONSE, "the connection closed before the response was complete")
            if len(pending) > self._max_event_bytes:
                raise UpstreamError(
                    Failure.BAD_RESPONSE, f"the provider sent a stream line longer than {self._max_event_bytes} bytes"
                )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@contextlib.contextmanager
def transport_errors() -> Iterator[None]:
    """Map the HTTP client's exceptions to UpstreamError; key material never reaches the message."""
    try:
        yield
    except UpstreamError:
        raise
    except TimeoutError:
        raise UpstreamError(Failure.TIMEOUT, "the provider did not answer in time") from None
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
        raise UpstreamError(Failure.BAD_RESPONSE, "the connection closed before the response was complete") from None
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamError(Failure.CONNECT, f"cannot connect to {exc.host}:{exc.port}") from None
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
        raise UpstreamError(Failure.CONNECT, f"transport error: {type(exc).__name__}") from None
