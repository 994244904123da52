"""What every wire protocol shares on the wire: the pooled HTTP client, capped reads, lines salvaged
from a cut, transport errors, the key in the provider's auth style. Error answers: upstream_errors.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson

from llmagg.common.http_client import BodyTooLarge, ConnectError, HttpClient, HttpError, Response, ResponseError
from llmagg.common.secrets import Secret
from llmagg.registry.auth import key_headers
from llmagg_router.domain.json_limits import too_deep
from llmagg_router.domain.upstream import Candidate, Failure, UpstreamError

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


class HttpUpstream:
    """One connection pool for every provider and protocol."""

    def __init__(
        self,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_connections: int = 512,
        max_response_bytes: int = 32 * 1024 * 1024,
        max_event_bytes: int = 2 * 1024 * 1024,
    ) -> None:
        self._max_response_bytes = max_response_bytes
        self._max_event_bytes = max_event_bytes
        self._pool = HttpClient(
            connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s, max_connections=max_connections
        )

    async def post(
        self, url: str, payload: Any, headers: Mapping[str, str], classify: Classify
    ) -> tuple[bytes, Mapping[str, str]]:
        """POST JSON, return the whole 2xx body and the response's headers; any other status is raised
        as `classify` says. A body over the limit a gRPC message can carry is refused, not cut."""
        with transport_errors():
            response = await self._pool.post(url, orjson.dumps(payload), headers)
            try:
                raw = await response.read_all(self._max_response_bytes)
            finally:
                response.release()
        if response.status >= 300:
            raise classify(response.status, response.headers, raw)
        return raw, response.headers

    async def open(self, url: str, payload: Any, headers: Mapping[str, str], classify: Classify) -> Response:
        """POST JSON and return the 2xx response, open for streaming (the caller releases it); any other
        status is raised as `classify` says."""
        with transport_errors():
            response = await self._pool.post(url, orjson.dumps(payload), headers)
        if response.status < 300:
            return response
        try:
            with transport_errors():
                raw = await response.read_all(self._max_response_bytes)
        finally:
            response.release()
        raise classify(response.status, response.headers, raw)

    async def lines(self, response: Response) -> AsyncIterator[list[bytes]]:
        """The body's lines as they arrive, those of each read together; after a cut, every whole line that
        arrived before it, then the error."""
        pending = bytearray()
        while True:
            with transport_errors():
                data = await response.read()
            if not data:
                if pending:
                    yield [bytes(pending)]  # the last line of a body that does not end in a newline
                return
            last = data.rfind(b"\n")
            if last < 0:  # a line still coming (a long one comes in many reads: no copy of it per read)
                pending += data
            else:
                lines = (bytes(pending) + data[:last]).split(b"\n")
                pending[:] = data[last + 1 :]
                yield lines
            if len(pending) > self._max_event_bytes:
                raise UpstreamError(
                    Failure.BAD_RESPONSE, f"the provider sent a stream line longer than {self._max_event_bytes} bytes"
                )

    async def close(self) -> None:
        await self._pool.close()


def too_large(limit: int) -> UpstreamError:
    return UpstreamError(Failure.TOO_LARGE, f"the provider's answer is larger than {limit} bytes")


class _TransportErrors:
    """Map the HTTP client's exceptions to UpstreamError; key material never reaches the message."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> bool:
        if error is None or isinstance(error, UpstreamError):
            return False
        if isinstance(error, TimeoutError):
            raise UpstreamError(Failure.TIMEOUT, "the provider did not answer in time") from None
        if isinstance(error, BodyTooLarge):
            raise too_large(error.limit) from None
        if isinstance(error, ResponseError):
            raise UpstreamError(Failure.BAD_RESPONSE, str(error)) from None
        if isinstance(error, ConnectError):
            raise UpstreamError(Failure.CONNECT, f"cannot connect to {error.host}:{error.port}") from None
        if isinstance(error, HttpError | OSError):
            raise UpstreamError(Failure.CONNECT, f"transport error: {type(error).__name__}") from None
        return False


_TRANSPORT_ERRORS = _TransportErrors()


def transport_errors() -> _TransportErrors:
    return _TRANSPORT_ERRORS
