"""Routing with fallback: try candidates in order under one deadline, learn from every failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import trace

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.logging import log_fields, scrub
from router.domain.health import HealthTable
from router.domain.resolver import Resolution, Resolver
from router.domain.upstream import Candidate, Failure, Operation, ProviderAdapter, UpstreamError

log = logging.getLogger(__name__)
tracer = trace.get_tracer("llmagg.router")

ROUTER_FIELDS = ("provider", "model_quality")  # ours; never sent upstream
T = TypeVar("T")


@dataclass(frozen=True)
class RouterLimits:
    max_attempts: int = 6
    # The whole fallback chain must finish (non-stream) or reach first content (stream) in this time.
    request_timeout_s: float = 300.0
    # Cooldown after a 429 that carried no hint of how long to wait.
    default_cooldown_s: float = 30.0


@dataclass(frozen=True)
class Route:
    provider: str
    model: str
    account: str
    attempts: int


@dataclass(frozen=True)
class RoutedResponse:
    body: dict[str, Any]
    route: Route


@dataclass(frozen=True)
class ParsedRequest:
    model: str
    provider: str | None
    quality: str | None
    upstream_body: dict[str, Any]


def parse_request(body: Any, operation: Operation) -> ParsedRequest:
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.", "invalid_body", None)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid(
            "You must provide a model parameter (a model id, `provider/model` or `auto`).", "missing_model", "model"
        )
    if operation is Operation.CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _invalid("`messages` must be a non-empty array.", "invalid_messages", "messages")
    elif "input" not in body:
        raise _invalid("You must provide an `input` parameter.", "missing_input", "input")
    if not isinstance(body.get("stream", False), bool):
        raise _invalid("`stream` must be a boolean.", "invalid_stream", "stream")
    provider = body.get("provider")
    quality = body.get("model_quality")
    for name, value in (("provider", provider), ("model_quality", quality)):
        if value is not None and not isinstance(value, str):
            raise _invalid(f"`{name}` must be a string.", f"invalid_{name}", name)
    upstream = {k: v for k, v in body.items() if k not in ROUTER_FIELDS}
    return ParsedRequest(model, provider or None, quality or None, upstream)


def _invalid(message: str, code: str, param: str | None) -> ServiceError:
    return ServiceError(ErrorKind.INVALID_ARGUMENT, message, code=code, param=param)


def _upstream_body(body: dict[str, Any], candidate: Candidate) -> dict[str, Any]:
    """The body as this candidate's provider gets it: its model id, minus fields it rejects."""
    drop = candidate.provider.drop_params
    if drop:
        body = {k: v for k, v in body.items() if k not in drop}
    return {**body, "model": candidate.model_id}


def _describe(candidate: Candidate) -> str:
    return f"{candidate.provider.id}/{candidate.model_id} via {candidate.account.alias}"


def _has_content(chunk: dict[str, Any]) -> bool:
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


class _Attempts:
    """Bookkeeping for one request's walk through its candidates."""

    def __init__(self, router: Router, resolution: Resolution, model: str) -> None:
        self.router = router
        self.resolution = resolution
        self.model = model
        self.failures: list[tuple[Candidate, UpstreamError]] = []
        self.min_context = 0

    def candidates(self) -> Iterator[tuple[int, Candidate]]:
        attempt = 0
        for candidate in self.resolution.candidates:
            if attempt >= self.router.limits.max_attempts:
                return
            window = candidate.context_window
            if self.min_context and window is not None and window <= self.min_context:
                continue
            attempt += 1
            yield attempt, candidate

    def failed(self, candidate: Candidate, error: UpstreamError) -> None:
        """Learn from the failure; raise when it must go back to the client instead of falling over."""
        self.router.learn(candidate, error)
        if error.failure is Failure.CLIENT:
            upstream = error.error or {}
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                scrub(str(upstream.get("message") or error.message)),
                code=str(upstream.get("code") or "upstream_invalid_request"),
                param=upstream.get("param"),
            )
        if error.failure is Failure.CONTEXT_LENGTH:
            self.min_context = max(self.min_context, candidate.context_window or 0)
        self.failures.append((candidate, error))

    def exhausted(self) -> ServiceError:
        failures = self.failures
        if (
            failures
            and failures[-1][1].failure is Failure.CONTEXT_LENGTH
            and not any(f.failure not in (Failure.CONTEXT_LENGTH, Failure.RATE_LIMITED) for _, f in failures)
        ):
            return ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                f"The request is longer than the context window of every model that can serve {self.model!r}.",
                code="context_length_exceeded",
                param="messages",
            )
        waits = [f.retry_after_s for _, f in failures if f.failure is Failure.RATE_LIMITED and f.retry_after_s]
        if self.resolution.soonest_retry_s is not None:
            waits.append(self.resolution.soonest_retry_s)
        if all(f.failure is Failure.RATE_LIMITED for _, f in failures) and (failures or waits):
            return ServiceError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"Every account that can serve {self.model!r} is rate limited right now; retry after the "
                "Retry-After header.",
                code="rate_limit_exceeded",
                retry_after_s=min(waits) if waits else self.router.limits.default_cooldown_s,
            )
        if not failures:
            return ServiceError(
                ErrorKind.UNAVAILABLE,
                f"No usable account can serve {self.model!r}: the providers rejected every configured key.",
                code="no_usable_account",
                retryable=False,
            )
        tried = "; ".join(f"{_describe(c)}: {e.message}" for c, e in failures)
        return ServiceError(
            ErrorKind.UNAVAILABLE,
            f"All {len(failures)} candidates for {self.model!r} failed ({tried}).",
            code="all_candidates_failed",
        )


class RoutedStream:
    """A chat stream that has reached its first content; iterate it for the chunks."""

    def __init__(
        self,
        router: Router,
        candidate: Candidate,
        route: Route,
        head: list[dict[str, Any]],
        rest: AsyncIterator[dict[str, Any]],
        resources: contextlib.AsyncExitStack,
        span: trace.Span,
        first_content_ms: float,
    ) -> None:
        self.route = route
        self._router, self._candidate = router, candidate
        self._head, self._rest, self._resources = head, rest, resources
        # Latency of a stream is its time to first content: comparable with a non-stream answer,
        # unlike the whole stream's length.
        self._span, self._first_content_ms = span, first_content_ms
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        provider = self._candidate.provider.id
        try:
            for chunk in self._head:
                chunk["provider"] = provider
                yield chunk
            self._head = []
            async for chunk in self._rest:
                chunk["provider"] = provider
                yield chunk
        except UpstreamError as error:
            self._router.learn(self._candidate, error)
            _mark_failed(self._span, error)
            raise ServiceError(
                ErrorKind.UNAVAILABLE,
                f"The upstream {provider} failed after the response had started: {error.message}",
                code="upstream_stream_interrupted",
            ) from error
        else:
            self._router.health.record_success(provider, self._candidate.model_id, self._first_content_ms)
            self._span.set_attribute("llmagg.outcome", "ok")
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Release the upstream connection; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        await self._resources.aclose()
        self._span.end()


class Router:
    def __init__(
        self,
        resolver: Resolver,
        health: HealthTable,
        adapters: Mapping[str, ProviderAdapter],
        limits: RouterLimits,
    ) -> None:
        self.resolver = resolver
        self.health = health
        self.adapters = adapters
        self.limits = limits

    def learn(self, candidate: Candidate, error: UpstreamError) -> None:
        provider, alias, model = candidate.provider.id, candidate.account.alias, candidate.model_id
        failure = error.failure
        if failure is Failure.RATE_LIMITED:
            seconds = error.retry_after_s if error.retry_after_s is not None else self.limits.default_cooldown_s
            error.retry_after_s = seconds
            self.health.cool_down(provider, alias, "" if candidate.provider.shared_quota else model, seconds)
        elif failure is Failure.AUTH:
            self.health.disable(provider, alias)
        elif failure in (Failure.SERVER, Failure.TIMEOUT, Failure.CONNECT, Failure.BAD_RESPONSE, Failure.NOT_FOUND):
            self.health.record_failure(provider, model)
        log.warning(
            "attempt failed: %s (%s)",
            _describe(candidate),
            failure.value,
            extra=log_fields(
                provider=provider,
                model=model,
                account=alias,
                reason=failure.value,
                status=error.status,
                detail=error.message,
            ),
        )

    def _start(self, body: Any, operation: Operation) -> tuple[ParsedRequest, _Attempts]:
        request = parse_request(body, operation)
        model_type = "chat" if operation is Operation.CHAT else "embedding"
        resolution = self.resolver.resolve(request.model, request.provider, request.quality, model_type)
        return request, _Attempts(self, resolution, request.model)

    @staticmethod
    def _span(candidate: Candidate, attempt: int) -> trace.Span:
        return tracer.start_span(
            "router.attempt",
            attributes={
                "llmagg.provider": candidate.provider.id,
                "llmagg.model": candidate.model_id,
                "llmagg.account": candidate.account.alias,
                "llmagg.attempt": attempt,
            },
        )

    async def _within_deadline(self, model: str, walk: Awaitable[T]) -> T:
        """The whole walk through the candidates runs under one deadline."""
        try:
            async with asyncio.timeout(self.limits.request_timeout_s):
                return await walk
        except TimeoutError:
            raise ServiceError(
                ErrorKind.DEADLINE_EXCEEDED,
                f"No candidate for {model!r} answered within the request deadline.",
                code="request_timeout",
            ) from None

    async def complete(self, body: Any, operation: Operation = Operation.CHAT) -> RoutedResponse:
        request, attempts = self._start(body, operation)
        return await self._within_deadline(request.model, self._first_success(request, attempts, operation))

    async def _first_success(self, request: ParsedRequest, attempts: _Attempts, operation: Operation) -> RoutedResponse:
        for number, candidate in attempts.candidates():
            adapter = self.adapters[candidate.provider.protocol]
            started = time.monotonic()
            with trace.use_span(self._span(candidate, number), end_on_exit=True) as span:
                try:
                    response = await adapter.request(
                        candidate, operation, _upstream_body(request.upstream_body, candidate)
                    )
                except UpstreamError as error:
                    _mark_failed(span, error)
                    failure = error
                else:
                    span.set_attribute("llmagg.outcome", "ok")
                    failure = None
            if failure is not None:
                attempts.failed(candidate, failure)
                continue
            self.health.record_success(candidate.provider.id, candidate.model_id, (time.monotonic() - started) * 1000)
            response["provider"] = candidate.provider.id
            return RoutedResponse(response, self._route(candidate, number))
        raise attempts.exhausted()

    async def open_stream(self, body: Any) -> RoutedStream:
        request, attempts = self._start(body, Operation.CHAT)
        return await self._within_deadline(request.model, self._first_stream(request, attempts))

    async def _first_stream(self, request: ParsedRequest, attempts: _Attempts) -> RoutedStream:
        for number, candidate in attempts.candidates():
            adapter = self.adapters[candidate.provider.protocol]
            started = time.monotonic()
            span = self._span(candidate, number)
            resources = contextlib.AsyncExitStack()
            head: list[dict[str, Any]] = []
            try:
                chunks = await resources.enter_async_context(
                    adapter.stream(candidate, _upstream_body(request.upstream_body, candidate))
                )
                rest = aiter(chunks)
                async for chunk in rest:
                    head.append(chunk)
                    if _has_content(chunk):
                        break
            except UpstreamError as error:
                _mark_failed(span, error)
                span.end()
                await resources.aclose()
                attempts.failed(candidate, error)
                continue
            except BaseException:
                span.end()
                await resources.aclose()
                raise
            first_content_ms = (time.monotonic() - started) * 1000
            route = self._route(candidate, number)
            return RoutedStream(self, candidate, route, head, rest, resources, span, first_content_ms)
        raise attempts.exhausted()

    @staticmethod
    def _route(candidate: Candidate, attempts: int) -> Route:
        return Route(candidate.provider.id, candidate.model_id, candidate.account.alias, attempts)


def _mark_failed(span: trace.Span, error: UpstreamError) -> None:
    span.set_attributes({"llmagg.outcome": "failed", "llmagg.reason": error.failure.value})
    span.set_status(trace.Status(trace.StatusCode.ERROR, error.failure.value))
