"""Routing with fallback: try candidates in order under one deadline, learn from every failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
from opentelemetry import trace

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.logging import log_fields
from llmagg.common.secrets import Secret
from llmagg_router.domain.affinity import Affinity, session_of
from llmagg_router.domain.assembly import assemble
from llmagg_router.domain.attempt import Answer, Attempt, AttemptPlan, QuotaDenied, describe
from llmagg_router.domain.hedging import MIN_HEDGE_DELAY_S, FirstContentTimes, HedgeMode, Race, hedged, hedging
from llmagg_router.domain.json_limits import MAX_JSON_DEPTH, too_deep
from llmagg_router.domain.key_redaction import KeyRedactor
from llmagg_router.domain.own_key import OwnKey
from llmagg_router.domain.ports import (
    CircuitState,
    Headroom,
    HealthStore,
    KeySource,
    KeyUnavailable,
    QuotaKey,
    RouterMetrics,
    RouterPorts,
)
from llmagg_router.domain.preferences import (
    NO_PREFERENCES,
    Preferences,
    needed_capabilities,
    parse_fallback_models,
    parse_provider_object,
)
from llmagg_router.domain.request_values import check_chat_values, check_embedding_values
from llmagg_router.domain.resolver import Resolution, Resolver
from llmagg_router.domain.tokens import completion_allowance, estimate_prompt_tokens, requested_completion_tokens
from llmagg_router.domain.upstream import Candidate, Failure, Operation, ProviderAdapter, UpstreamError

log = logging.getLogger(__name__)
ROUTER_FIELDS = ("provider", "model_quality", "models")  # ours (and OpenRouter's); never sent upstream
T = TypeVar("T")
MIN_WAIT_S = 0.1  # a request waiting for capacity sleeps at least this long between walks


@dataclass(frozen=True)
class RouterLimits:
    max_attempts: int = 6
    # The whole fallback chain must finish (non-stream) or reach first content (stream) in this time.
    request_timeout_s: float = 300.0
    # Cooldown after a 429 that carried no hint of how long to wait.
    default_cooldown_s: float = 30.0
    # A stream attempt must bring its first content within this; a non-stream attempt abandoned after
    # this long without an answer counts as timed out too (its circuit learns of a hung provider).
    first_byte_timeout_s: float = 15.0
    # No stream runs longer than this, however steadily its chunks come.
    stream_max_s: float = 900.0
    # Read non-stream chat answers from upstream as streams (see assembly.py), up to this size.
    stream_upstream: bool = True
    max_answer_bytes: int = 31 * 1024 * 1024
    # The longest a request that asked to wait (x-llmagg-max-wait) waits for a rate-limited account.
    max_wait_s: float = 60.0
    # Which requests hedge (hedging.py), and after how long without content while a provider's model has
    # too few observed times to first content for their 95th percentile.
    hedge: HedgeMode = HedgeMode.FASTEST
    hedge_delay_s: float = 2.0


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
class CallerHints:
    """What the caller said about a request outside its body (gRPC metadata, HTTP headers)."""

    client_id: str = ""  # who is calling, as the gateway says (x-llmagg-client-id): usage is charged to it
    session: str | None = None  # x-session-id: keep this session on one account (see affinity.py)
    max_wait_s: float = 0.0  # x-llmagg-max-wait: wait this long for a rate-limited account instead of a 429
    hedge: bool | None = None  # x-llmagg-hedge: start the next candidate beside a slow one (None: the setting)


NO_HINTS = CallerHints()


@dataclass(frozen=True)
class ParsedRequest:
    model: str
    provider: str | None
    quality: str | None
    upstream_body: dict[str, Any]
    preferences: Preferences = NO_PREFERENCES


def parse_request(body: Any, operation: Operation) -> ParsedRequest:
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.", "invalid_body", None)
    model = body.get("model")
    fallbacks: tuple[str, ...] = ()
    if body.get("models") is not None:
        model, fallbacks = parse_fallback_models(body["models"], model if isinstance(model, str) else None)
    if not isinstance(model, str) or not model:
        raise _invalid(
            "You must provide a model parameter (a model id, `provider/model` or `auto`).", "missing_model", "model"
        )
    if operation is Operation.CHAT:
        check_chat_values(body)
    elif "input" not in body:
        raise _invalid("You must provide an `input` parameter.", "missing_input", "input")
    else:
        check_embedding_values(body)
    if too_deep(body):
        raise _invalid(f"The request body nests more than {MAX_JSON_DEPTH} levels deep.", "invalid_json", None)
    if not isinstance(body.get("stream", False), bool):
        raise _invalid("`stream` must be a boolean.", "invalid_stream", "stream")
    provider = body.get("provider")
    preferences = NO_PREFERENCES
    if isinstance(provider, dict):  # OpenRouter's provider object; a string is our pin
        preferences = parse_provider_object(provider)
        provider = None
    quality = body.get("model_quality")
    for name, value in (("provider", provider), ("model_quality", quality)):
        if value is not None and not isinstance(value, str):
            raise _invalid(f"`{name}` must be a string or an object of routing preferences.", f"invalid_{name}", name)
    upstream = {k: v for k, v in body.items() if k not in ROUTER_FIELDS}
    preferences = _with_request_needs(preferences, upstream, fallbacks)
    return ParsedRequest(model, provider or None, quality or None, upstream, preferences)


def _with_request_needs(preferences: Preferences, body: dict[str, Any], fallbacks: tuple[str, ...]) -> Preferences:
    needs = needed_capabilities(body)
    limit = requested_completion_tokens(body)
    if not (needs or limit or fallbacks or preferences.require_parameters) and preferences is NO_PREFERENCES:
        return preferences  # the common request: one shared, cached plan key
    return replace(
        preferences,
        fallbacks=fallbacks,
        needs=needs,
        max_output_tokens=limit,
        fields=frozenset(body) if preferences.require_parameters else frozenset(),
    )


def _invalid(message: str, code: str, param: str | None) -> ServiceError:
    return ServiceError(ErrorKind.INVALID_ARGUMENT, message, code=code, param=param)


def _upstream_body(body: dict[str, Any], candidate: Candidate) -> dict[str, Any]:
    """The body as this candidate's provider gets it: its model id, minus fields it rejects."""
    drop = candidate.provider.drop_params
    if drop:
        body = {k: v for k, v in body.items() if k not in drop}
    return {**body, "model": candidate.model_id}


def _streamed(body: dict[str, Any], candidate: Candidate) -> dict[str, Any]:
    """A non-stream request as the stream the router reads it from (with usage where the provider allows)."""
    streamed = {**body, "stream": True}
    if "stream_options" not in candidate.provider.drop_params:
        streamed["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return streamed


def _finish_reasons(chunk: dict[str, Any]) -> list[str]:
    return [str(choice["finish_reason"]) for choice in chunk.get("choices") or () if choice.get("finish_reason")]


def _answered_messages(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of a chat answer (none for embeddings: vectors are not messages)."""
    return [choice["message"] for choice in response.get("choices") or () if isinstance(choice.get("message"), dict)]


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


def _by_headroom(candidates: list[Candidate], headroom: Mapping[QuotaKey, Headroom]) -> list[Candidate]:
    """The accounts of each provider's model ordered by what is left of their quotas, most first.

    The order of the models (free first, quality mode, latency) stays; only the rotation of one model's
    accounts gives way to headroom (ties keep the rotation)."""
    ranked: list[Candidate] = []
    run: list[Candidate] = []

    def flush() -> None:
        run.sort(key=lambda c: -(headroom[c.quota_key].remaining if c.quota_key in headroom else 1.0))
        ranked.extend(run)
        run.clear()

    for candidate in candidates:
        if run and (run[0].provider.id, run[0].model_id) != (candidate.provider.id, candidate.model_id):
            flush()
        run.append(candidate)
    flush()
    return ranked


class _Walk:
    """One request's way through its candidates: which to try next, what failed, what to answer."""

    def __init__(
        self,
        resolution: Resolution,
        headroom: Mapping[QuotaKey, Headroom],
        health: HealthStore,
        model: str,
        limits: RouterLimits,
        prompt_tokens: int = 0,
        allowance: int = 0,
    ) -> None:
        self.model = model
        self.limits = limits
        # Models whose window is smaller than the prompt (as estimated) are skipped without a round trip.
        self.prompt_tokens = prompt_tokens
        self.allowance = allowance  # the answer's tokens metered, before a candidate's window clamps them
        self.too_small = 0
        self.attempts = 0  # candidates called so far (one without quota is skipped, not called)
        self.earlier_attempts = 0  # by the walks before this one, when the request waited for capacity
        self.failures: list[tuple[Candidate, UpstreamError]] = []
        self.soonest_retry_s = resolution.soonest_retry_s
        self.quota_waits: list[float] = []
        self.keyless: list[str] = []  # candidates skipped because no key could be leased, and why
        self.min_context = 0
        self._health = health
        self._unreachable: set[str] = set()  # endpoints this request could not connect to
        self._candidates: list[Candidate] = []
        for candidate in resolution.candidates:
            room = headroom.get(candidate.quota_key)
            if room is not None and room.remaining <= 0:
                self.quota_waits.append(room.retry_after_s or limits.default_cooldown_s)
            else:
                self._candidates.append(candidate)
        if headroom:
            self._candidates = _by_headroom(self._candidates, headroom)

    def candidates(self) -> Iterator[Candidate]:
        """In order, skipping models too small for the prompt and endpoints known to be down; those
        behind an open circuit come last (half-open ones once, as the probe: see `_usable_now`)."""
        last_resort: list[Candidate] = []
        for candidate in self._candidates:
            if self.attempts >= self.limits.max_attempts:
                return
            if not self._fits(candidate) or candidate.endpoint_circuit in self._unreachable:
                continue
            if self._usable_now(candidate):
                yield candidate
            else:
                last_resort.append(candidate)
        for candidate in last_resort:
            if self.attempts >= self.limits.max_attempts:
                return
            if self._fits(candidate) and candidate.endpoint_circuit not in self._unreachable:
                yield candidate

    def estimated_tokens(self, candidate: Candidate) -> int:
        """What an attempt of `candidate` reserves: no answer is longer than its model's context window."""
        window = candidate.context_window
        return self.prompt_tokens + (min(self.allowance, window) if window else self.allowance)

    def _fits(self, candidate: Candidate) -> bool:
        window = candidate.context_window
        if window is None:
            return True
        if window < self.prompt_tokens:
            self.too_small += 1
            return False
        return not (self.min_context and window <= self.min_context)

    def _usable_now(self, candidate: Candidate) -> bool:
        """Closed circuits are; an open one is not; a half-open one is for the one request that claims its probe."""
        for circuit in (candidate.endpoint_circuit, candidate.model_circuit):
            state = self._health.circuit_state(circuit)
            if state is CircuitState.OPEN or (
                state is CircuitState.HALF_OPEN and not self._health.claim_probe(circuit)
            ):
                return False
        return True

    def denied(self, denial: QuotaDenied) -> None:
        self.quota_waits.append(denial.retry_after_s or self.limits.default_cooldown_s)

    def no_key(self, candidate: Candidate, problem: KeyUnavailable) -> None:
        self.keyless.append(f"{candidate.account.alias}: {problem.reason}")

    def failed(self, candidate: Candidate, error: UpstreamError) -> None:
        """Note the failure; raise when it must go back to the client instead of falling over."""
        if error.failure is Failure.CLIENT:
            upstream = error.error or {}
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                upstream.get("message") or error.message,
                code=upstream.get("code") or "upstream_invalid_request",
                param=upstream.get("param"),
            )
        if error.failure is Failure.CONTEXT_LENGTH:
            self.min_context = max(self.min_context, candidate.context_window or 0)
        if error.failure is Failure.CONNECT:
            self._unreachable.add(candidate.endpoint_circuit)
        self.failures.append((candidate, error))

    def exhausted(self) -> ServiceError:
        # A candidate whose protocol cannot express the request was not called: it neither failed
        # nor was rate limited. When no candidate could take the request, the request is the problem.
        failures = [(c, e) for c, e in self.failures if e.failure is not Failure.UNSUPPORTED]
        if self.failures and not failures:
            reasons = "; ".join(f"{describe(c)}: {e.message}" for c, e in self.failures)
            return ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                f"No provider that serves {self.model!r} can take this request ({reasons}).",
                code="unsupported_request",
            )
        too_long = (
            failures
            and failures[-1][1].failure is Failure.CONTEXT_LENGTH
            and not any(f.failure not in (Failure.CONTEXT_LENGTH, Failure.RATE_LIMITED) for _, f in failures)
        )
        only_too_small = self.too_small and all(f.failure is Failure.CONTEXT_LENGTH for _, f in failures)
        if too_long or (only_too_small and not (self.quota_waits or self.keyless or self.soonest_retry_s)):
            return ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                f"The request (about {self.prompt_tokens} tokens) is longer than the context window of every "
                f"model that can serve {self.model!r}.",
                code="context_length_exceeded",
                param="messages",
            )
        waits = [f.retry_after_s for _, f in failures if f.failure is Failure.RATE_LIMITED and f.retry_after_s]
        waits += self.quota_waits
        if self.soonest_retry_s is not None:
            waits.append(self.soonest_retry_s)
        if all(f.failure is Failure.RATE_LIMITED for _, f in failures) and (failures or waits):
            return ServiceError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"Every account that can serve {self.model!r} is rate limited right now; retry after the "
                "Retry-After header.",
                grpc_message=f"Every account that can serve {self.model!r} is rate limited right now; retry "
                "after the delay in the RetryInfo detail (or the retry-after trailer).",
                code="rate_limit_exceeded",
                retry_after_s=min(waits) if waits else self.limits.default_cooldown_s,
            )
        if not failures:
            why = (
                f"no key could be leased ({'; '.join(self.keyless)})"
                if self.keyless
                else ("the providers rejected every configured key")
            )
            return ServiceError(
                ErrorKind.UNAVAILABLE,
                f"No usable account can serve {self.model!r}: {why}.",
                code="no_usable_account",
                retryable=bool(self.keyless),
            )
        tried = "; ".join(f"{describe(c)}: {e.message}" for c, e in self.failures)
        if all(f.failure is Failure.TOO_LARGE for _, f in failures):
            return ServiceError(
                ErrorKind.UNAVAILABLE,
                f"Every provider's answer for {self.model!r} was too large to pass on ({tried}).",
                code="upstream_response_too_large",
                http_status=502,
            )
        return ServiceError(
            ErrorKind.UNAVAILABLE,
            f"All {len(failures)} candidates for {self.model!r} failed ({tried}).",
            code="all_candidates_failed",
        )


def _shutting_down() -> ServiceError:
    return ServiceError(
        ErrorKind.UNAVAILABLE,
        "The server is shutting down and could not finish this request; retry it.",
        code="server_shutting_down",
        retry_after_s=1,
        retry_elsewhere=True,
    )


class _RequestRecord:
    """One request as metrics, the RPC's span and the log see it: what was asked, what served it, how it ended.

    With `trace_content` the span also holds the messages asked and answered (GenAI's opt-in
    `gen_ai.input.messages` / `gen_ai.output.messages`, as OpenAI JSON).
    """

    def __init__(
        self,
        metrics: RouterMetrics,
        operation: Operation,
        request: ParsedRequest,
        clock: Callable[[], float],
        trace_content: bool,
    ) -> None:
        self._metrics, self._operation, self._model, self._clock = metrics, operation.value, request.model, clock
        self.trace_content = trace_content
        self._started = clock()
        self._span = trace.get_current_span()
        self._span.set_attributes({"gen_ai.operation.name": self._operation, "gen_ai.request.model": request.model})
        if trace_content and self._span.is_recording():
            asked = request.upstream_body.get("messages", request.upstream_body.get("input"))
            self._span.set_attribute("gen_ai.input.messages", orjson.dumps(asked).decode())

    def served(self, route: Route, answer: Answer, output: list[dict[str, Any]] | None = None) -> None:
        attributes: dict[str, Any] = {"gen_ai.provider.name": route.provider, "llmagg.attempts": route.attempts}
        if self.trace_content and output is not None:
            attributes["gen_ai.output.messages"] = orjson.dumps(output).decode()
        if answer.response_model:
            attributes["gen_ai.response.model"] = answer.response_model
        if answer.usage:
            attributes["gen_ai.usage.input_tokens"] = answer.usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = answer.usage.completion_tokens
        self._span.set_attributes(attributes)
        milliseconds = round(self._ended("ok", route.attempts) * 1000)
        tokens = f"{answer.usage.prompt_tokens}+{answer.usage.completion_tokens} tokens, " if answer.usage else ""
        log.info(
            "%s %s -> %s/%s via %s: %d attempt%s, %s%d ms",
            self._operation, self._model, route.provider, route.model, route.account, route.attempts,
            "" if route.attempts == 1 else "s", tokens, milliseconds,
            extra=log_fields(
                status="ok", model_asked=self._model, provider=route.provider, model=route.model,
                account=route.account, attempts=route.attempts, latency_ms=milliseconds,
            ),
        )  # fmt: skip

    def failed(self, error: BaseException, attempts: int) -> None:
        outcome = error.code if isinstance(error, ServiceError) else "cancelled"
        self._span.set_attributes({"error.type": outcome, "llmagg.attempts": attempts})
        milliseconds = round(self._ended(outcome, attempts) * 1000)
        log.info(
            "%s %s failed: %s after %d attempt%s, %d ms",
            self._operation, self._model, outcome, attempts, "" if attempts == 1 else "s", milliseconds,
            extra=log_fields(status=outcome, model_asked=self._model, attempts=attempts, latency_ms=milliseconds),
        )  # fmt: skip

    def _ended(self, outcome: str, attempts: int) -> float:
        seconds = self._clock() - self._started
        self._metrics.request_ended(self._operation, outcome, seconds, attempts)
        return seconds


class RoutedStream:
    """A chat stream that has reached its first content; iterate it for the chunks.

    Its attempt ends with it: settled with the stream's usage when the upstream finishes, learned from
    when the upstream fails, abandoned when the client leaves first.
    """

    def __init__(
        self,
        router: Router,
        attempt: Attempt,
        route: Route,
        head: list[dict[str, Any]],
        rest: AsyncIterator[dict[str, Any]],
        resources: contextlib.AsyncExitStack,
        first_content_ms: float,
        record: _RequestRecord,
    ) -> None:
        self.route = route
        self._router, self._attempt, self._record = router, attempt, record
        self._head, self._rest, self._resources = head, rest, resources
        # A stream's latency is its time to first content: comparable with a non-stream answer,
        # unlike the whole stream's length.
        self._first_content_ms = first_content_ms
        self._deadline = asyncio.get_running_loop().time() + router.limits.stream_max_s
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        provider = self._attempt.candidate.provider.id
        last: dict[str, Any] = {}
        finish_reasons: list[str] = []
        answered: list[dict[str, Any]] | None = [] if self._record.trace_content else None
        try:
            try:
                with self._router.interruptible():
                    for chunk in self._head:
                        chunk["provider"] = provider
                        last = chunk
                        finish_reasons += _finish_reasons(chunk)
                        if answered is not None:
                            answered.append(chunk)
                        yield chunk
                    self._head = []
                    while True:
                        try:
                            async with asyncio.timeout_at(self._deadline):
                                chunk = await anext(self._rest)
                        except StopAsyncIteration:
                            break
                        chunk["provider"] = provider
                        last = chunk
                        finish_reasons += _finish_reasons(chunk)
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
                    f"The stream ran longer than {self._router.limits.stream_max_s:g}s, the longest a stream may run.",
                    code="stream_time_limit",
                ) from None
        except BaseException as error:
            self._record.failed(error, self.route.attempts)
            raise
        else:
            answer = replace(Answer.of(last, self._first_content_ms), finish_reasons=tuple(finish_reasons))
            await self._attempt.succeed(answer, self._first_content_ms)
            self._record.served(
                self.route, answer, None if answered is None else _answered_messages(assemble(answered))
            )
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Release the upstream connection; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        await self._resources.aclose()
        await self._attempt.abandon()  # no-op when the stream already ended one way or the other


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
    ) -> None:
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
        self.first_content_times = FirstContentTimes()  # for hedge delays
        self._background: set[asyncio.Task[Any]] = set()  # attempts a hedged request abandoned, finishing

    def interrupt(self) -> None:
        """At shutdown, when the grace period is nearly over: end every request still running with an
        explicit `server_shutting_down` error (a stream gets it as its last event) instead of letting
        the server cut it silently."""
        self._interrupted = True
        for task in list(self._running):
            task.cancel()

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Marks the current task as serving a request that `interrupt` may end."""
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if not self._interrupted:
                raise
            task.uncancel()
            raise _shutting_down() from None
        finally:
            self._running.discard(task)

    async def complete(
        self,
        body: Any,
        operation: Operation = Operation.CHAT,
        own_key: Secret | None = None,
        caller: CallerHints = NO_HINTS,
    ) -> RoutedResponse:
        """One JSON exchange. `own_key`: the client's own provider key for this request (BYOK); `caller`:
        who asks (the quota ledger records it), its session and how long it may wait."""
        request = parse_request(body, operation)
        record = _RequestRecord(self.ports.metrics, operation, request, self._clock, self.trace_content)
        streamed = operation is Operation.CHAT and self.limits.stream_upstream

        async def call(attempt: Attempt, key: Secret | None) -> RoutedResponse:
            candidate = attempt.candidate
            upstream_body = _upstream_body(request.upstream_body, candidate)
            first_content_ms = None
            if streamed:
                response, first_content_ms = await self._collect(attempt, key, _streamed(upstream_body, candidate))
            else:
                adapter = self.adapters[candidate.provider.protocol]
                response = await adapter.request(candidate, key, operation, upstream_body)
                attempt.quota_headers = getattr(response, "quota_headers", {})
            answer = Answer.of(response, first_content_ms or attempt.elapsed_ms())
            await attempt.succeed(answer, first_content_ms)
            response["provider"] = candidate.provider.id
            routed = RoutedResponse(response, _route(attempt))
            record.served(routed.route, answer, _answered_messages(response) if record.trace_content else None)
            return routed

        with self.interruptible():
            # Only a streamed attempt says when its first content comes: the others are never hedged.
            return await self._walk(request, operation, call, record, own_key, caller, hedgeable=streamed)

    async def open_stream(
        self, body: Any, own_key: Secret | None = None, caller: CallerHints = NO_HINTS
    ) -> RoutedStream:
        request = parse_request(body, Operation.CHAT)
        record = _RequestRecord(self.ports.metrics, Operation.CHAT, request, self._clock, self.trace_content)

        async def call(attempt: Attempt, key: Secret | None) -> RoutedStream:
            upstream_body = _upstream_body(request.upstream_body, attempt.candidate)
            async with contextlib.AsyncExitStack() as resources:
                head, rest = await self._first_content(attempt, key, upstream_body, resources)
                owned = resources.pop_all()  # the stream owns the connection from here on
            first_content_ms = attempt.elapsed_ms()
            return RoutedStream(self, attempt, _route(attempt), head, rest, owned, first_content_ms, record)

        with self.interruptible():
            return await self._walk(request, Operation.CHAT, call, record, own_key, caller, hedgeable=True)

    async def _first_content(
        self,
        attempt: Attempt,
        key: Secret | None,
        body: dict[str, Any],
        resources: contextlib.AsyncExitStack,
        max_bytes: int | None = None,
    ) -> tuple[list[dict[str, Any]], AsyncIterator[dict[str, Any]]]:
        """Open an upstream stream and read it up to its first content, within the first-byte timeout."""
        candidate = attempt.candidate
        adapter = self.adapters[candidate.provider.protocol]
        head: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(self.limits.first_byte_timeout_s):
                opened = await resources.enter_async_context(adapter.stream(candidate, key, body, max_bytes))
                attempt.quota_headers = getattr(opened, "quota_headers", {})
                rest = aiter(opened)
                async for chunk in rest:
                    head.append(chunk)
                    if _has_content(chunk):
                        times = self.first_content_times
                        times.observe(candidate.provider.id, candidate.model_id, attempt.elapsed_ms())
                        attempt.content_arrived()  # a hedged attempt that comes second stops here (HedgeLost)
                        break
        except TimeoutError:
            raise UpstreamError(Failure.TIMEOUT, f"no content within {self.limits.first_byte_timeout_s:g}s") from None
        return head, rest

    async def _collect(
        self, attempt: Attempt, key: Secret | None, body: dict[str, Any]
    ) -> tuple[dict[str, Any], float]:
        """A whole answer, read as a stream: first content within the first-byte timeout, all within the cap.
        With the time its first content took."""
        async with contextlib.AsyncExitStack() as resources:
            chunks, rest = await self._first_content(attempt, key, body, resources, self.limits.max_answer_bytes)
            first_content_ms = attempt.elapsed_ms()
            try:
                async with asyncio.timeout(self.limits.stream_max_s):
                    chunks += [chunk async for chunk in rest]
            except TimeoutError:
                raise UpstreamError(Failure.TIMEOUT, f"no whole answer within {self.limits.stream_max_s:g}s") from None
        # Joining chunks joins what the stream's redaction leaves whole (a tool call's name cut in pieces).
        return KeyRedactor(() if key is None else (key.reveal(),)).answer(assemble(chunks)), first_content_ms

    async def _walk(
        self,
        request: ParsedRequest,
        operation: Operation,
        call: Callable[[Attempt, Secret | None], Awaitable[T]],
        record: _RequestRecord,
        own_key: Secret | None = None,
        caller: CallerHints = NO_HINTS,
        hedgeable: bool = False,
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
            prompt_tokens = estimate_prompt_tokens(request.upstream_body)
            allowance = completion_allowance(request.upstream_body)
            plan = AttemptPlan(
                operation.value,
                prompt_tokens + allowance,
                self.limits.default_cooldown_s,
                self._clock,
                caller.client_id,
            )
            wait_until = self._clock() + min(caller.max_wait_s, self.limits.max_wait_s)
            while True:
                walk = await self._plan_walk(request, operation, ports, keys, session, prompt_tokens, allowance)
                walk.earlier_attempts = attempts
                try:
                    hedge = hedgeable and hedging(self.limits.hedge, request.quality, caller.hedge)
                    return await self._first_success(walk, plan, call, request.model, ports, session, hedge)
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
        operation: Operation,
        ports: RouterPorts,
        keys: KeySource | None,
        session: bytes | None,
        prompt_tokens: int,
        allowance: int,
    ) -> _Walk:
        model_type = "chat" if operation is Operation.CHAT else "embedding"
        resolution = self.resolver.resolve(
            request.model, request.provider, request.quality, model_type, keys, request.preferences
        )
        if session is not None and self.affinity is not None:
            resolution = replace(resolution, candidates=tuple(self.affinity.first(session, resolution.candidates)))
        # Headroom ranks and skips candidates; a single one learns the same from its Reserve.
        quota_keys = list(dict.fromkeys(c.quota_key for c in resolution.candidates))
        headroom = await ports.quota.headroom(quota_keys) if len(quota_keys) > 1 else {}
        return _Walk(resolution, headroom, ports.health, request.model, self.limits, prompt_tokens, allowance)

    async def _first_success(
        self,
        walk: _Walk,
        plan: AttemptPlan,
        call: Callable[[Attempt, Secret | None], Awaitable[T]],
        model: str,
        ports: RouterPorts,
        session: bytes | None = None,
        hedge: bool = False,
    ) -> T:
        candidates = iter(walk.candidates())

        async def begin_next() -> tuple[Attempt, Secret | None] | None:
            """The next candidate's attempt with its key (those without quota or key are skipped)."""
            for candidate in candidates:
                metered = replace(plan, estimated_tokens=walk.estimated_tokens(candidate))
                attempt = Attempt(ports, candidate, walk.earlier_attempts + walk.attempts + 1, metered)
                try:
                    key = await attempt.begin()
                except QuotaDenied as denial:
                    walk.denied(denial)
                    continue
                except KeyUnavailable as problem:
                    walk.no_key(candidate, problem)
                    continue
                walk.attempts += 1
                return attempt, key
            return None

        async def run(attempt: Attempt, key: Secret | None) -> T:
            """One attempt to its end: served, or failed (UpstreamError, learned from), or abandoned."""
            try:
                # The upstream call's own spans nest under the attempt; the attempt records its outcome itself.
                with trace.use_span(attempt.span, record_exception=False, set_status_on_exception=False):
                    served = await call(attempt, key)
                if session is not None and self.affinity is not None:
                    self.affinity.remember(session, attempt.candidate)
                return served
            except UpstreamError as error:
                await attempt.fail(error)
                walk.failed(attempt.candidate, error)
                raise
            except BaseException:
                await attempt.abandon(timed_out=attempt.elapsed_ms() >= self.limits.first_byte_timeout_s * 1000)
                raise

        async def one_by_one() -> T:
            while (begun := await begin_next()) is not None:
                with contextlib.suppress(UpstreamError):
                    return await run(*begun)
            raise walk.exhausted()

        async def launch(race: Race) -> tuple[Attempt, Awaitable[T]] | None:
            begun = await begin_next()
            if begun is None:
                return None
            begun[0].race = race
            return begun[0], run(*begun)

        try:
            async with asyncio.timeout(self.limits.request_timeout_s):
                if hedge:
                    return await hedged(launch, self._hedge_delay_s, walk.exhausted, self._keep)
                return await one_by_one()
        except TimeoutError:
            raise ServiceError(
                ErrorKind.DEADLINE_EXCEEDED,
                f"No candidate for {model!r} answered within the request deadline.",
                code="request_timeout",
            ) from None

    def _hedge_delay_s(self, attempt: Attempt) -> float:
        candidate = attempt.candidate
        p95 = self.first_content_times.p95_ms(candidate.provider.id, candidate.model_id)
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


def _route(attempt: Attempt) -> Route:
    candidate = attempt.candidate
    return Route(candidate.provider.id, candidate.model_id, candidate.account.alias, attempt.number)
