"""The OpenAI wire protocol over a pooled HTTP client (also OpenRouter, Groq, Cerebras, NIM, ...).

Everything an upstream says goes through `scrub` before it leaves this module: the router knows
every key it sends, and no key may come back out of an upstream's answer (an error that echoes the
Authorization header, say).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson

from llmagg.common.logging import scrub
from llmagg.common.secrets import Secret
from llmagg_router.adapters.retry_after import retry_after_seconds
from llmagg_router.domain.json_limits import too_deep
from llmagg_router.domain.upstream import Candidate, Failure, Operation, UpstreamAnswer, UpstreamError, quota_headers

_PATHS = {Operation.CHAT: "/chat/completions", Operation.EMBEDDINGS: "/embeddings"}
_CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "context window", "too many tokens")
_ERROR_FIELDS = ("message", "type", "param", "code")  # all of an upstream error object a client may see
_MESSAGE_LIMIT = 2000
_READ_CHUNK = 64 * 1024


def _clean(value: Any, limit: int = _MESSAGE_LIMIT) -> str | None:
    """An upstream value as text a client may see: scrubbed of keys, bounded, None when absent."""
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return scrub(text)[:limit]


def _quota_id(error: Any) -> str:
    """Gemini's QuotaFailure quotaId ("GenerateRequestsPerDayPerProjectPerModel-FreeTier"), "" when none."""
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        for violation in (detail.get("violations") or ()) if isinstance(detail, dict) else ():
            quota = violation.get("quotaId") if isinstance(violation, dict) else None
            if isinstance(quota, str):
                return quota[:200]
    return ""


def _parsed_error(raw: bytes) -> Any:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, list) and parsed:  # Gemini sometimes wraps the error in a list
        parsed = parsed[0]
    return parsed


def _error_of(parsed: Any, raw: bytes) -> tuple[str, dict[str, str | None]]:
    """The upstream's error text and its OpenAI `error` fields, scrubbed, from whatever shape it sent."""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        message = parsed.get("message") if isinstance(parsed, dict) else None
        error = {"message": message if message is not None else raw[:_MESSAGE_LIMIT].decode("utf-8", "replace").strip()}
    fields = {name: _clean(error.get(name)) for name in _ERROR_FIELDS}
    return fields["message"] or "", fields


def classify(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    parsed = _parsed_error(raw)
    message, error = _error_of(parsed, raw)
    described = f"HTTP {status}: {message[:300]}" if message else f"HTTP {status}"
    if status in (429, 529):
        return UpstreamError(
            Failure.RATE_LIMITED,
            described,
            status=status,
            retry_after_s=retry_after_seconds(headers, message),
            headers=quota_headers(headers),
            quota_id=_quota_id(parsed.get("error") if isinstance(parsed, dict) else None),
        )
    if status in (401, 403):
        return UpstreamError(Failure.AUTH, f"HTTP {status}: the provider rejected the account's key", status=status)
    if status == 404:
        return UpstreamError(Failure.NOT_FOUND, described, status=status, error=error)
    if status == 408:
        return UpstreamError(Failure.TIMEOUT, described, status=status)
    if 400 <= status < 500 and status != 409:
        lowered = f"{error['code'] or ''} {message}".lower()
        if any(marker in lowered for marker in _CONTEXT_MARKERS):
            return UpstreamError(Failure.CONTEXT_LENGTH, described, status=status, error=error)
        return UpstreamError(Failure.CLIENT, described, status=status, error=error)
    return UpstreamError(Failure.SERVER, described, status=status)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(Failure.BAD_RESPONSE, f"the provider sent an invalid JSON {what}") from None
    if not isinstance(parsed, dict):
        raise UpstreamError(Failure.BAD_RESPONSE, f"the provider sent a {what} that is not a JSON object")
    if too_deep(parsed, raw=raw):
        raise UpstreamError(Failure.BAD_RESPONSE, f"the provider sent a {what} nested too deeply")
    return parsed


def _in_stream_error(chunk: dict[str, Any]) -> UpstreamError:
    error = chunk.get("error")
    message = _clean(error.get("message") if isinstance(error, dict) else error, 300) or ""
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    failure = Failure.RATE_LIMITED if code in ("429", "rate_limit_exceeded") else Failure.SERVER
    return UpstreamError(failure, f"error event in stream: {message}")


def _buffered(content: aiohttp.StreamReader) -> bytes:
    """What the connection delivered before it broke.

    aiohttp stops handing out buffered bytes once the connection has failed; the last events an
    upstream sent before a cut are still in the buffer and must reach the client before the error.
    """
    return content._read_nowait(-1)


class OpenAIHttpAdapter:
    """One shared connection pool for all providers; sessions are created on the serving loop."""

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

    @staticmethod
    def _headers(candidate: Candidate, key: Secret | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "llm-aggregator/0.1"}
        if key is None:
            return headers
        style = candidate.provider.auth
        if style == "bearer":
            headers["Authorization"] = f"Bearer {key.reveal()}"
        elif style == "token":
            headers["Authorization"] = f"Token {key.reveal()}"
        elif style in ("x-api-key", "x-goog-api-key"):
            headers[style] = key.reveal()
        return headers

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

    async def request(
        self, candidate: Candidate, key: Secret | None, operation: Operation, body: dict[str, Any]
    ) -> dict[str, Any]:
        url = candidate.account.base_url + _PATHS[operation]
        headers = self._headers(candidate, key)
        with _transport_errors():
            async with self._client().post(url, data=orjson.dumps(body), headers=headers) as resp:
                raw = await self._read(resp)
                if resp.status >= 300:
                    raise classify(resp.status, resp.headers, raw)
                answer = UpstreamAnswer(_json_object(raw, "response body"))
                answer.quota_headers = quota_headers(resp.headers)
        return answer

    @contextlib.asynccontextmanager
    async def stream(
        self, candidate: Candidate, key: Secret | None, body: dict[str, Any], max_bytes: int | None = None
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        url = candidate.account.base_url + _PATHS[Operation.CHAT]
        with _transport_errors():
            resp = await self._client().post(url, data=orjson.dumps(body), headers=self._headers(candidate, key))
        try:
            if resp.status >= 300:
                with _transport_errors():
                    raw = await self._read(resp)
                raise classify(resp.status, resp.headers, raw)
            yield _Events(self._events(resp, max_bytes), quota_headers(resp.headers))
        finally:
            resp.release()

    async def _events(self, resp: aiohttp.ClientResponse, max_bytes: int | None) -> AsyncIterator[dict[str, Any]]:
        finished = False
        total = 0
        async for line in self._lines(resp.content):
            total += len(line)
            if max_bytes is not None and total > max_bytes:
                raise UpstreamError(Failure.TOO_LARGE, f"the provider's answer is larger than {max_bytes} bytes")
            chunk = self._event(line)
            if chunk is _DONE:
                return
            if chunk is not None:
                finished = finished or _finishes(chunk)
                yield chunk
        if not finished:
            raise UpstreamError(Failure.BAD_RESPONSE, "the stream ended before the response was complete")

    async def _lines(self, content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
        """The body's lines as they arrive; after a cut, every whole line that arrived before it, then the error."""
        pending = bytearray()
        while True:
            broken = False
            with _transport_errors():
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

    @staticmethod
    def _event(line: bytes) -> dict[str, Any] | object | None:
        """One SSE line: a chunk, _DONE, or None for separators, comments and event names."""
        if not line.startswith(b"data:"):
            return None
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return _DONE
        chunk = _json_object(payload, "stream event")
        if "error" in chunk:
            raise _in_stream_error(chunk)
        return chunk

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_DONE = object()


class _Events:
    """A stream's chunks, with the rate-limit headers its response came with."""

    def __init__(self, events: AsyncIterator[dict[str, Any]], headers: Mapping[str, str]) -> None:
        self._events = events
        self.quota_headers = headers

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events


def _finishes(chunk: dict[str, Any]) -> bool:
    return any(choice.get("finish_reason") for choice in chunk.get("choices") or ())


@contextlib.contextmanager
def _transport_errors():
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
