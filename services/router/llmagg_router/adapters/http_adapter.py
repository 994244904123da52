"""One ProviderAdapter for every HTTP wire protocol: the plumbing is shared, a `Dialect` translates.

A dialect turns the OpenAI-shaped request the router holds into its own (`Exchange`: URL, headers,
payload), reads its whole answer back into a `chat.completion`, its stream's events into
`chat.completion.chunk`s (a `Translator`), and its error answers into `UpstreamError`s. The domain
only ever sees OpenAI's shapes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol

from llmagg.common.http_client import Response
from llmagg.common.secrets import Secret
from llmagg_router.adapters.http_upstream import HttpUpstream, json_object, too_large
from llmagg_router.domain.key_redaction import KeyRedactor
from llmagg_router.domain.upstream import (
    Candidate,
    Operation,
    UpstreamAnswer,
    UpstreamError,
    quota_headers,
)


class Translator(Protocol):
    """One stream's events (each SSE `data:` object) into OpenAI chunks."""

    def feed(self, event: dict[str, Any]) -> Iterable[dict[str, Any]]:
        """The chunks this event stands for; raises UpstreamError for an error the stream reports."""
        ...

    def end(self) -> Iterable[dict[str, Any]]:
        """At the clean end of the body: the last chunks; raises BAD_RESPONSE when the answer is incomplete."""
        ...


class Exchange(NamedTuple):
    """One request as the dialect sends it, and how its answer is read back into OpenAI's shapes."""

    url: str
    headers: Mapping[str, str]
    payload: dict[str, Any]
    decode: Callable[[dict[str, Any]], dict[str, Any]]  # the whole answer -> OpenAI's
    translator: Callable[[], Translator]  # a stream's events -> OpenAI chunks


class Dialect(Protocol):
    def exchange(
        self, candidate: Candidate, key: Secret | None, operation: Operation, body: dict[str, Any]
    ) -> Exchange:
        """The request to send; raises UpstreamError(UNSUPPORTED) for what the protocol cannot express."""
        ...

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError: ...


class HttpAdapter:
    """Speaks `dialect` over the shared connection pool."""

    def __init__(self, http: HttpUpstream, dialect: Dialect) -> None:
        self._http = http
        self._dialect = dialect

    async def request(
        self, candidate: Candidate, key: Secret | None, operation: Operation, body: dict[str, Any]
    ) -> dict[str, Any]:
        exchange = self._dialect.exchange(candidate, key, operation, body)
        raw, headers = await self._http.post(exchange.url, exchange.payload, exchange.headers, self._dialect.classify)
        redactor = _redactor(key)
        answer = UpstreamAnswer(redactor.answer(exchange.decode(json_object(redactor.json(raw), "response body"))))
        answer.quota_headers = quota_headers(headers)
        return answer

    def stream(
        self,
        candidate: Candidate,
        key: Secret | None,
        body: dict[str, Any],
        max_bytes: int | None = None,
        joined: bool = False,
    ) -> _OpenStream:
        return _OpenStream(functools.partial(self._open, candidate, key, body, max_bytes, joined))

    async def _open(
        self, candidate: Candidate, key: Secret | None, body: dict[str, Any], max_bytes: int | None, joined: bool
    ) -> tuple[Response, _Events]:
        exchange = self._dialect.exchange(candidate, key, Operation.CHAT, body)
        resp = await self._http.open(exchange.url, exchange.payload, exchange.headers, self._dialect.classify)
        try:
            redactor = _redactor(key)
            batches = self._chunks(resp, max_bytes, exchange.translator(), redactor)
            events = _flattened(batches) if joined else self._events(batches, redactor)
            return resp, _Events(events, quota_headers(resp.headers))
        except BaseException:
            resp.release()
            raise

    async def _events(
        self, batches: AsyncIterator[Iterator[dict[str, Any]]], redactor: KeyRedactor
    ) -> AsyncIterator[dict[str, Any]]:
        """The chunks without the key sent, where a client joins them: text that could be the start of a
        key is held back until the next piece shows it is not (and passed on before the stream ends,
        cleanly or with an error)."""
        keys = redactor.stream()
        try:
            async with contextlib.aclosing(batches):
                async for chunks in batches:
                    for chunk in chunks:
                        for passed in keys.chunk(chunk):
                            yield passed
        except UpstreamError:
            for passed in keys.flush():  # what came before the failure reaches the client before its error
                yield passed
            raise
        for passed in keys.flush():
            yield passed

    async def _chunks(
        self, resp: Response, max_bytes: int | None, translator: Translator, redactor: KeyRedactor
    ) -> AsyncIterator[Iterator[dict[str, Any]]]:
        """Every `data:` line of the SSE body as OpenAI chunks, those of each read together, without a key
        whole in one event (`event:` lines, comments and blanks carry nothing the `data:` object does not
        repeat). OpenAI's `[DONE]` ends it as complete; the end of the body ends it as the translator
        judges. A read's lines are parsed as its chunks are taken, so the first goes on before the last is
        parsed, and the chunks before a failure come before its error. Each read's chunks are taken whole
        before the next read is asked for."""
        body = _Body(max_bytes, translator, redactor)
        # Closed here, not left to the collector: an unfinished generator's finalizer costs the loop a wake-up.
        reads = self._http.lines(resp)
        async with contextlib.aclosing(reads):
            async for lines in reads:
                yield body.chunks(lines)
                if body.done:
                    return
            yield iter(translator.end())

    async def close(self) -> None:
        await self._http.close()  # shared: closing it twice is harmless


async def _flattened(batches: AsyncIterator[Iterator[dict[str, Any]]]) -> AsyncIterator[dict[str, Any]]:
    async with contextlib.aclosing(batches):
        async for chunks in batches:
            for chunk in chunks:
                yield chunk


class _Body:
    """What a stream's body has shown so far: its size (against the cap) and whether `[DONE]` came."""

    def __init__(self, max_bytes: int | None, translator: Translator, redactor: KeyRedactor) -> None:
        self._max_bytes, self._translator, self._redactor = max_bytes, translator, redactor
        self._total = 0
        self.done = False

    def chunks(self, lines: list[bytes]) -> Iterator[dict[str, Any]]:
        """The chunks of one read's lines, each line parsed when the chunks before it were taken."""
        for line in lines:
            self._total += len(line)
            if self._max_bytes is not None and self._total > self._max_bytes:
                raise too_large(self._max_bytes)
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.done = True
                return
            yield from self._translator.feed(json_object(self._redactor.json(payload), "stream event"))


def _redactor(key: Secret | None) -> KeyRedactor:
    return KeyRedactor(() if key is None else (key.reveal(),))


class _OpenStream:
    """HttpAdapter.stream's context: the stream opened on entry, its response released on exit. (A class: the
    context managers every request enters cost less so than as generators; see the README, Benchmarks.)"""

    __slots__ = ("_open", "_response")

    def __init__(self, open_stream: Callable[[], Awaitable[tuple[Response, _Events]]]) -> None:
        self._open = open_stream
        self._response: Response | None = None

    async def __aenter__(self) -> _Events:
        self._response, events = await self._open()
        return events

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            self._response, response = None, self._response
            response.release()


class _Events:
    """A stream's chunks, with the rate-limit headers its response came with (for the quota ledger)."""

    def __init__(self, events: AsyncIterator[dict[str, Any]], headers: Mapping[str, str]) -> None:
        self._events = events
        self.quota_headers = headers

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events
