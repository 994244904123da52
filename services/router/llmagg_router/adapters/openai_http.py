"""The OpenAI wire protocol over a pooled HTTP client (also OpenRouter, Groq, Cerebras, NIM, ...)."""

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
from llmagg_router.domain.upstream import Candidate, Failure, Operation, UpstreamError

_PATHS = {Operation.CHAT: "/chat/completions", Operation.EMBEDDINGS: "/embeddings"}
_CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "context window", "too many tokens")


def _error_message(raw: bytes) -> tuple[str, dict[str, Any] | None]:
    """The upstream's error text and its OpenAI `error` object, from whatever shape it sent."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:200].decode("utf-8", "replace").strip(), None
    if isinstance(parsed, list) and parsed:  # Gemini sometimes wraps the error in a list
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or ""), error
    if isinstance(error, str):
        return error, {"message": error}
    if isinstance(parsed, dict) and "message" in parsed:
        return str(parsed["message"]), None
    return raw[:200].decode("utf-8", "replace").strip(), None


def classify(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    message, error = _error_message(raw)
    text = scrub(message)[:300]
    described = f"HTTP {status}: {text}" if text else f"HTTP {status}"
    if status in (429, 529):
        return UpstreamError(
            Failure.RATE_LIMITED, described, status=status, retry_after_s=retry_after_seconds(headers, message)
        )
    if status in (401, 403):
        return UpstreamError(Failure.AUTH, f"HTTP {status}: the provider rejected the account's key", status=status)
    if status == 404:
        return UpstreamError(Failure.NOT_FOUND, described, status=status, error=error)
    if status == 408:
        return UpstreamError(Failure.TIMEOUT, described, status=status)
    if 400 <= status < 500 and status != 409:
        code = str((error or {}).get("code") or "")
        lowered = f"{code} {message}".lower()
        if any(marker in lowered for marker in _CONTEXT_MARKERS):
            return UpstreamError(Failure.CONTEXT_LENGTH, described, status=status, error=error)
        return UpstreamError(Failure.CLIENT, described, status=status, error=error or {"message": text})
    return UpstreamError(Failure.SERVER, described, status=status)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(Failure.BAD_RESPONSE, f"the provider sent an invalid JSON {what}") from None
    if not isinstance(parsed, dict):
        raise UpstreamError(Failure.BAD_RESPONSE, f"the provider sent a {what} that is not a JSON object")
    return parsed


def _in_stream_error(chunk: dict[str, Any]) -> UpstreamError:
    error = chunk.get("error")
    message = error.get("message", "") if isinstance(error, dict) else str(error)
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    failure = Failure.RATE_LIMITED if code in ("429", "rate_limit_exceeded") else Failure.SERVER
    return UpstreamError(failure, f"error event in stream: {scrub(message)[:300]}")


class OpenAIHttpAdapter:
    """One shared connection pool for all providers; sessions are created on the serving loop."""

    def __init__(self, *, connect_timeout_s: float, read_timeout_s: float, max_connections: int = 512) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout_s, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._max_connections = max_connections
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

    async def request(
        self, candidate: Candidate, key: Secret | None, operation: Operation, body: dict[str, Any]
    ) -> dict[str, Any]:
        url = candidate.account.base_url + _PATHS[operation]
        headers = self._headers(candidate, key)
        with _transport_errors():
            async with self._client().post(url, data=orjson.dumps(body), headers=headers) as resp:
                raw = await resp.read()
                if resp.status >= 300:
                    raise classify(resp.status, resp.headers, raw)
        return _json_object(raw, "response body")

    @contextlib.asynccontextmanager
    async def stream(
        self, candidate: Candidate, key: Secret | None, body: dict[str, Any]
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        url = candidate.account.base_url + _PATHS[Operation.CHAT]
        with _transport_errors():
            resp = await self._client().post(url, data=orjson.dumps(body), headers=self._headers(candidate, key))
        try:
            if resp.status >= 300:
                with _transport_errors():
                    raw = await resp.read()
                raise classify(resp.status, resp.headers, raw)
            yield self._events(resp)
        finally:
            resp.release()

    @staticmethod
    async def _events(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
        finished = False
        with _transport_errors():
            async for line in resp.content:
                if not line.startswith(b"data:"):
                    continue  # blank separators, `: keep-alive` comments, `event:` names
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    return
                chunk = _json_object(payload, "stream event")
                if "error" in chunk:
                    raise _in_stream_error(chunk)
                for choice in chunk.get("choices") or ():
                    if choice.get("finish_reason"):
                        finished = True
                yield chunk
        if not finished:
            raise UpstreamError(Failure.BAD_RESPONSE, "the stream ended before the response was complete")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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
