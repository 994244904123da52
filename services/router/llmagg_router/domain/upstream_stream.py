"""Upstream chat streams: read up to their first content, read whole (a non-stream answer read as a
stream: see assembly.py), or passed on to the client as a RoutedStream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.running_loop import running_loop
from llmagg.common.secrets import Secret
from llmagg_router.domain.assembly import assemble
from llmagg_router.domain.attempt import Answer, Attempt
from llmagg_router.domain.deadline import Deadline, timeout_after
from llmagg_router.domain.hedging import FirstContentTimes
from llmagg_router.domain.key_redaction import KeyRedactor
from llmagg_router.domain.limits import RouterLimits
from llmagg_router.domain.request_record import RequestRecord, Route
from llmagg_router.domain.upstream import Candidate, Failure, ProviderAdapter, UpstreamError


def upstream_body_for(body: dict[str, Any], candidate: Candidate) -> dict[str, Any]:
    """The body as this candidate's provider gets it: its model id, minus fields it rejects."""
    drop = candidate.provider.drop_params
    if drop:
        body = {k: v for k, v in body.items() if k not in drop}
    return {**body, "model": candidate.model_id}


def as_stream(body: dict[str, Any], candidate: Candidate) -> dict[str, Any]:
    """A non-stream request as the stream the router reads it from (with usage where the provider allows)."""
    streamed = {**body, "stream": True}
    if "stream_options" not in candidate.provider.drop_params:
        streamed["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return streamed


def finish_reasons_of(chunk: dict[str, Any]) -> list[str]:
    return [str(choice["finish_reason"]) for choice in chunk.get("choices") or () if choice.get("finish_reason")]


def answered_messages(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of a chat answer (none for embeddings: vectors are not messages)."""
    return [choice["message"] for choice in response.get("choices") or () if isinstance(choice.get("message"), dict)]


def has_content(chunk: dict[str, Any]) -> bool:
    """True once a chunk carries something a client can see (the role-only first chunk does not)."""
    choices = chunk.get("choices")
    if not choices:
        return True
    for choice in choices:
        if choice.get("finish_reason"):
            return True
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("refusal") or delta.get("function_call"):
            return True
    return False


class UpstreamReader:
    """Reads upstream chat streams under the router's limits, and learns how long first content takes."""

    def __init__(self, adapters: Mapping[str, ProviderAdapter], limits: RouterLimits) -> None:
        self.adapters = adapters
        self.limits = limits
        self.first_content_times = FirstContentTimes()  # for hedge delays

    async def first_content(
        self,
        attempt: Attempt,
        key: Secret | None,
        body: dict[str, Any],
        max_bytes: int | None = None,
        joined: bool = False,
    ) -> tuple[list[dict[str, Any]], AsyncIterator[dict[str, Any]], AbstractAsyncContextManager[Any]]:
        """Open an upstream stream and read it up to its first content, within the first-byte timeout. The
        stream comes back open, with its context for the caller to close (`close_upstream`). `joined`: the
        caller joins the chunks and redacts the whole (ProviderAdapter.stream)."""
        candidate = attempt.candidate
        opening = self.adapters[candidate.provider.protocol].stream(candidate, key, body, max_bytes, joined)
        head: list[dict[str, Any]] = []
        opened = False
        try:
            try:
                with timeout_after(self.limits.first_byte_timeout_s):
                    stream = await opening.__aenter__()
                    opened = True
                    attempt.quota_headers = getattr(stream, "quota_headers", {})
                    rest = aiter(stream)
                    async for chunk in rest:
                        head.append(chunk)
                        if has_content(chunk):
                            times = self.first_content_times
                            times.observe(candidate.provider.id, candidate.model_id, attempt.elapsed_ms())
                            attempt.content_arrived()  # a hedged attempt that comes second stops here (HedgeLost)
                            break
            except TimeoutError:
                raise UpstreamError(
                    Failure.TIMEOUT, f"no content within {self.limits.first_byte_timeout_s:g}s"
                ) from None
        except BaseException as error:
            if opened:
                await close_upstream(opening, error)
            raise
        return head, rest, opening

    async def collect(self, attempt: Attempt, key: Secret | None, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """A whole answer, read as a stream: first content within the first-byte timeout, all within the cap.
        With the time its first content took."""
        chunks, rest, opening = await self.first_content(attempt, key, body, self.limits.max_answer_bytes, joined=True)
        try:
            first_content_ms = attempt.elapsed_ms()
            try:
                with timeout_after(self.limits.stream_max_s):
                    chunks += [chunk async for chunk in rest]
            except TimeoutError:
                raise UpstreamError(Failure.TIMEOUT, f"no whole answer within {self.limits.stream_max_s:g}s") from None
        except BaseException as error:
            await close_upstream(opening, error)
            raise
        await close_upstream(opening)
        # Joining chunks joins what the stream's redaction leaves whole (a tool call's name cut in pieces).
        return KeyRedactor(() if key is None else (key.reveal(),)).answer(assemble(chunks)), first_content_ms


async def close_upstream(opening: AbstractAsyncContextManager[Any], error: BaseException | None = None) -> None:
    """Leave an upstream stream's context, as `async with` would (told the error that ends it, if one does)."""
    if error is None:
        await opening.__aexit__(None, None, None)
    else:
        await opening.__aexit__(type(error), error, error.__traceback__)


class RoutedStream:
    """A chat stream that has reached its first content; iterate it for the chunks.

    Its attempt ends with it: settled with the stream's usage when the upstream finishes, learned from
    when the upstream fails, abandoned when the client leaves first.
    """

    def __init__(
        self,
        attempt: Attempt,
        route: Route,
        head: list[dict[str, Any]],
        rest: AsyncIterator[dict[str, Any]],
        opening: AbstractAsyncContextManager[Any],
        first_content_ms: float,
        record: RequestRecord,
        stream_max_s: float,
        interruptible: Callable[[], AbstractContextManager[None]],
    ) -> None:
        """`opening`: the upstream stream's context, left when the stream closes. `interruptible`: marks the
        task passing the stream on as one that shutdown may end (the router's)."""
        self.route = route
        self._attempt, self._record, self._interruptible = attempt, record, interruptible
        self._head, self._rest, self._opening = head, rest, opening
        # A stream's latency is its time to first content: comparable with a non-stream answer,
        # unlike the whole stream's length.
        self._first_content_ms = first_content_ms
        self._stream_max_s = stream_max_s
        self._deadline = Deadline(running_loop().time() + stream_max_s)
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        provider = self._attempt.candidate.provider.id
        last: dict[str, Any] = {}
        finish_reasons: list[str] = []
        answered: list[dict[str, Any]] | None = [] if self._record.trace_content else None
        # The chunks read before the stream was handed over, then the rest, all within the stream's deadline.
        head, self._head = iter(self._head), []
        rest, deadline = self._rest, self._deadline
        try:
            try:
                with self._interruptible():
                    while True:
                        chunk = next(head, None)
                        if chunk is None and (chunk := await deadline.next_of(rest)) is None:
                            break
                        chunk["provider"] = provider
                        last = chunk
                        finish_reasons += finish_reasons_of(chunk)
                        if answered is not None:
                            answered.append(chunk)
                        yield chunk
            except UpstreamError as error:
                await self._attempt.fail(error)
                raise ServiceError(
                    ErrorKind.UNAVAILABLE,
                    f"The upstream {provider} failed after the response had started: {error.message}",
                    code="upstream_stream_interrupted",
                ) from error
            except TimeoutError:
                raise ServiceError(
                    ErrorKind.DEADLINE_EXCEEDED,
                    f"The stream ran longer than {self._stream_max_s:g}s, the longest a stream may run.",
                    code="stream_time_limit",
                ) from None
        except BaseException as error:
            self._record.failed(error, self.route.attempts)
            raise
        else:
            answer = Answer.of(last, self._first_content_ms, tuple(finish_reasons))
            await self._attempt.succeed(answer, self._first_content_ms)
            self._record.served(self.route, answer, None if answered is None else answered_messages(assemble(answered)))
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Release the upstream connection; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._deadline.cancel()
        await close_upstream(self._opening)
        await self._attempt.abandon()  # no-op when the stream already ended one way or the other
