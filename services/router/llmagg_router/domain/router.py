"""Routing with fallback: a request, parsed once (request.py), walks its candidates in order under one
deadline (walk.py), learning from every failure; its answer comes whole or as a stream
(upstream_stream.py), and metrics, the span and the log record how it went (request_record.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from opentelemetry import trace

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.running_loop import current_task
from llmagg.common.secrets import Secret
from llmagg_router.domain import meta_routing
from llmagg_router.domain.affinity import Affinity, session_of
from llmagg_router.domain.after_answer import AfterAnswer, after_answer
from llmagg_router.domain.attempt import Answer, Attempt, AttemptPlan, QuotaDenied
from llmagg_router.domain.deadline import timeout_after
from llmagg_router.domain.ensemble import complete_ensemble, is_ensemble
from llmagg_router.domain.ensemble_stream import ChosenAnswerStream
from llmagg_router.domain.hedging import MIN_HEDGE_DELAY_S, FirstContentTimes, Race, hedged, hedging
from llmagg_router.domain.limits import RouterLimits
from llmagg_router.domain.meta_controller import MetaController
from llmagg_router.domain.own_key import OwnKey
from llmagg_router.domain.ports import KeySource, KeyUnavailable, RouterPorts
from llmagg_router.domain.request import NO_HINTS, CallerHints, ParsedRequest, parse_request
from llmagg_router.domain.request_record import RequestRecord, Route, route_of
from llmagg_router.domain.resolver import Resolver
from llmagg_router.domain.upstream import Operation, ProviderAdapter, UpstreamError
from llmagg_router.domain.upstream_stream import (
    RoutedStream,
    UpstreamReader,
    answered_messages,
    as_stream,
    upstream_body_for,
)
from llmagg_router.domain.walk import Walk

T = TypeVar("T")
MIN_WAIT_S = 0.1  # a request waiting for capacity sleeps at least this long between walks


@dataclass(frozen=True)
class RoutedResponse:
    body: dict[str, Any]
    route: Route


def _shutting_down() -> ServiceError:
    return ServiceError(
        ErrorKind.UNAVAILABLE,
        "The server is shutting down and could not finish this request; retry it.",
        code="server_shutting_down",
        retry_after_s=1,
        retry_elsewhere=True,
    )


class _Interruptible:
    """`Router.interruptible()`: a class rather than a generator's context manager, as it wraps every request."""

    __slots__ = ("_router", "_task")

    def __init__(self, router: Router) -> None:
        self._router = router

    def __enter__(self) -> None:
        task = self._task = current_task()
        assert task is not None
        self._router._running.add(task)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        router, task = self._router, self._task
        router._running.discard(task)
        if kind is not None and issubclass(kind, asyncio.CancelledError) and router._interrupted:
            task.uncancel()
            raise _shutting_down() from None


class Router:
    def __init__(
        self,
        resolver: Resolver,
        ports: RouterPorts,
        adapters: Mapping[str, ProviderAdapter],
        limits: RouterLimits,
        clock: Callable[[], float] = time.monotonic,
        trace_content: bool = False,
        affinity: Affinity | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        meta: MetaController | None = None,
    ) -> None:
        self.meta = meta  # orders `auto`'s candidates and learns from outcomes (None: static ranking)
        self.resolver = resolver
        self.ports = ports
        self.adapters = adapters
        self.limits = limits
        self.trace_content = trace_content
        self.affinity = affinity
        self._sleep = sleep
        self._clock = clock
        self._running: set[asyncio.Task[Any]] = set()
        self._interrupted = False
        self.reader = UpstreamReader(adapters, limits)
        self._background: set[asyncio.Task[Any]] = set()  # attempts a hedged request abandoned, finishing

    @property
    def first_content_times(self) -> FirstContentTimes:
        """How long each provider's model took to first content (its 95th percentile is a hedge's delay)."""
        return self.reader.first_content_times

    def interrupt(self) -> None:
        """At shutdown, when the grace period is nearly over: end every request still running with an
        explicit `server_shutting_down` error (a stream gets it as its last event) instead of letting
        the server cut it silently."""
        self._interrupted = True
        for task in list(self._running):
            task.cancel()

    def interruptible(self) -> _Interruptible:
        """Marks the current task as serving a request that `interrupt` may end."""
        return _Interruptible(self)

    async def complete(
        self,
        body: Any,
        operation: Operation = Operation.CHAT,
        own_key: Secret | None = None,
        caller: CallerHints = NO_HINTS,
        after: AfterAnswer | None = None,
    ) -> RoutedResponse:
        """One JSON exchange. `own_key`: the client's own provider key for this request (BYOK); `caller`:
        who asks (the quota ledger records it), its session and how long it may wait; `after`: takes what
        only records the answer, for its deliverer to run once the answer is on its way."""
        if operation is Operation.CHAT and is_ensemble(body):
            return await complete_ensemble(self, body, own_key, caller)
        request = parse_request(body, operation)
        record = RequestRecord(self.ports.metrics, request, self._clock, self.trace_content)
        streamed = operation is Operation.CHAT and self.limits.stream_upstream

        async def call(attempt: Attempt, key: Secret | None) -> RoutedResponse:
            candidate = attempt.candidate
            upstream_body = upstream_body_for(request.upstream_body, candidate)
            first_content_ms = None
            if streamed:
                response, first_content_ms = await self.reader.collect(
                    attempt, key, as_stream(upstream_body, candidate)
                )
            else:
                adapter = self.adapters[candidate.provider.protocol]
                response = await adapter.request(candidate, key, operation, upstream_body)
                attempt.quota_headers = getattr(response, "quota_headers", {})
            answer = Answer.of(response, first_content_ms or attempt.elapsed_ms())
            await attempt.succeed(answer, first_content_ms, after)
            response["provider"] = candidate.provider.id
            routed = RoutedResponse(response, route_of(attempt))
            output = answered_messages(response) if record.trace_content else None
            after_answer(after, record.served, routed.route, answer, output, self._clock())
            return routed

        with self.interruptible():
            # Only a streamed attempt says when its first content comes: the others are never hedged.
            return await self._walk(request, call, record, own_key, caller, hedgeable=streamed, after=after)

    async def open_stream(
        self,
        body: Any,
        own_key: Secret | None = None,
        caller: CallerHints = NO_HINTS,
        after: AfterAnswer | None = None,
    ) -> RoutedStream | ChosenAnswerStream:
        """The stream of the first candidate to reach content. `after` takes what only learns from that
        (see after_answer.py): its taker runs it once the stream's first piece is written."""
        if is_ensemble(body):  # the answer is chosen whole, then streamed
            chosen = await complete_ensemble(self, body, own_key, caller)
            return ChosenAnswerStream(chosen.body, chosen.route)
        request = parse_request(body, Operation.CHAT)
        record = RequestRecord(self.ports.metrics, request, self._clock, self.trace_content)

        async def call(attempt: Attempt, key: Secret | None) -> RoutedStream:
            upstream_body = upstream_body_for(request.upstream_body, attempt.candidate)
            # The stream owns the upstream's connection (`opening`) from here on.
            head, rest, opening = await self.reader.first_content(attempt, key, upstream_body)
            first_content_ms = attempt.elapsed_ms()
            return RoutedStream(
                attempt,
                route_of(attempt),
                head,
                rest,
                opening,
                first_content_ms,
                record,
                self.limits.stream_max_s,
                self.interruptible,
            )

        with self.interruptible():
            return await self._walk(request, call, record, own_key, caller, hedgeable=True, after=after)

    async def _walk(
        self,
        request: ParsedRequest,
        call: Callable[[Attempt, Secret | None], Awaitable[T]],
        record: RequestRecord,
        own_key: Secret | None = None,
        caller: CallerHints = NO_HINTS,
        hedgeable: bool = False,
        after: AfterAnswer | None = None,
    ) -> T:
        """Try the candidates in order under one deadline until `call` succeeds for one of them (hedged when
        the request asks and `hedgeable`); when every one is rate limited and the caller asked to wait, wait
        for the soonest and walk again."""
        attempts = 0
        try:
            ports, keys = self.ports, None
            if own_key is not None:
                keys = OwnKey(self.resolver.own_key_provider(request.provider), own_key)
                ports = replace(ports, keys=keys)
            session = session_of(caller.session, request.upstream_body) if self.affinity else None
            plan = AttemptPlan(
                request.operation.value,
                self.limits.default_cooldown_s,
                self._clock,
                caller.client_id,
                request.model[:256],  # as much as the usage ledger keeps of it (longer: it refuses the row)
            )
            wait_until = self._clock() + min(caller.max_wait_s, self.limits.max_wait_s)
            while True:
                walk = await self._plan_walk(request, ports, keys, session)
                walk.earlier_attempts = attempts
                try:
                    hedge = hedgeable and hedging(self.limits.hedge, request.quality, caller.hedge)
                    return await self._first_success(walk, plan, call, ports, session, hedge, after)
                except ServiceError as error:
                    if error.code != "rate_limit_exceeded" or error.retry_after_s is None:
                        raise
                    wait = max(error.retry_after_s, MIN_WAIT_S)
                    if self._clock() + wait > wait_until:
                        raise
                finally:
                    attempts += walk.attempts
                await self._sleep(wait)
        except BaseException as error:
            record.failed(error, attempts)
            raise

    async def _plan_walk(
        self,
        request: ParsedRequest,
        ports: RouterPorts,
        keys: KeySource | None,
        session: bytes | None,
    ) -> Walk:
        resolution = self.resolver.resolve_request(request, keys)
        profile, reasons = None, {}
        if self.meta is not None and meta_routing.is_auto(request):
            resolution, profile, reasons = meta_routing.planned(self.meta, request, resolution)
            meta_routing.count_choice(ports.metrics, profile, resolution, reasons)
        if session is not None and self.affinity is not None:
            resolution = replace(resolution, candidates=tuple(self.affinity.first(session, resolution.candidates)))
        # Headroom ranks and skips candidates; a single one learns the same from its Reserve.
        quota_keys = list(dict.fromkeys(c.quota_key for c in resolution.candidates))
        headroom = await ports.quota.headroom(quota_keys) if len(quota_keys) > 1 else {}
        walk = Walk(request, resolution, headroom, ports.health, self.limits)
        if profile is not None:
            walk.profile = profile
        walk.route_reasons = reasons
        return walk

    async def _first_success(
        self,
        walk: Walk,
        plan: AttemptPlan,
        call: Callable[[Attempt, Secret | None], Awaitable[T]],
        ports: RouterPorts,
        session: bytes | None = None,
        hedge: bool = False,
        after: AfterAnswer | None = None,
    ) -> T:
        candidates = iter(walk.candidates())

        async def begin_next() -> tuple[Attempt, Secret | None] | None:
            """The next candidate's attempt with its key (those without quota or key are skipped)."""
            for candidate in candidates:
                number = walk.earlier_attempts + walk.attempts + 1
                attempt = Attempt(ports, candidate, number, plan, walk.estimated_tokens(candidate))
                try:
                    key = await attempt.begin()
                except QuotaDenied as denial:
                    walk.denied(denial)
                    continue
                except KeyUnavailable as problem:
                    walk.no_key(candidate, problem)
                    continue
                walk.attempts += 1
                attempt.route_reason = meta_routing.reason_for(walk.route_reasons, attempt)
                return attempt, key
            return None

        async def run(attempt: Attempt, key: Secret | None) -> T:
            """One attempt to its end: served, or failed (UpstreamError, learned from), or abandoned."""
            try:
                if attempt.span.is_recording():
                    # The upstream call's own spans nest under the attempt; it records its outcome itself.
                    with trace.use_span(attempt.span, record_exception=False, set_status_on_exception=False):
                        served = await call(attempt, key)
                else:  # an untraced request's: nothing would nest under it (nor be kept); its context stays
                    served = await call(attempt, key)
                if self.meta is not None:
                    # elapsed now: a stream's learning waits for its first event's write
                    after_answer(after, self._learn_served, walk, attempt, served, attempt.elapsed_ms())
                if session is not None and self.affinity is not None:
                    after_answer(after, self.affinity.remember, session, attempt.candidate)
                return served
            except UpstreamError as error:
                await attempt.fail(error)
                if self.meta is not None:
                    meta_routing.learn_failed(self.meta, walk.profile, attempt, error)
                walk.failed(attempt.candidate, error)
                raise
            except BaseException:
                await attempt.abandon(timed_out=attempt.elapsed_ms() >= self.limits.first_byte_timeout_s * 1000)
                raise

        async def one_by_one() -> T:
            while (begun := await begin_next()) is not None:
                try:
                    return await run(*begun)
                except UpstreamError:
                    continue  # learned from: the next candidate
            raise walk.exhausted()

        async def launch(race: Race) -> tuple[Attempt, Awaitable[T]] | None:
            begun = await begin_next()
            if begun is None:
                return None
            begun[0].race = race
            return begun[0], run(*begun)

        try:
            with timeout_after(self.limits.request_timeout_s):
                if hedge:
                    return await hedged(launch, self._hedge_delay_s, walk.exhausted, self._keep)
                return await one_by_one()
        except TimeoutError:
            raise ServiceError(
                ErrorKind.DEADLINE_EXCEEDED,
                f"No candidate for {walk.model!r} answered within the request deadline.",
                code="request_timeout",
            ) from None

    def _learn_served(self, walk: Walk, attempt: Attempt, served: Any, elapsed_ms: float) -> None:
        assert self.meta is not None
        meta_routing.learn_served(self.meta, walk.profile, walk.request, attempt, served, elapsed_ms)

    def _hedge_delay_s(self, attempt: Attempt) -> float:
        candidate = attempt.candidate
        p95 = self.reader.first_content_times.p95_ms(candidate.provider.id, candidate.model_id)
        return self.limits.hedge_delay_s if p95 is None else max(p95 / 1000, MIN_HEDGE_DELAY_S)

    def _keep(self, task: asyncio.Task[Any]) -> None:
        """Let an abandoned attempt finish (settle, close its connection) without the request waiting for it."""
        self._background.add(task)
        task.add_done_callback(self._forget)

    async def abandoned_settled(self) -> None:
        """Wait until every attempt hedged requests abandoned has finished (settled, its connection closed)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: it was abandoned on purpose
