"""One try of one candidate: reserve quota, lease the key, call inside a span, then settle or learn.

The unary and the streaming paths both go through this step; they differ only in what the call is
and in when it ends (a stream's attempt ends with the stream).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from llmagg.common.logging import log_fields
from llmagg.common.secrets import Secret
from llmagg_router.domain.after_answer import AfterAnswer, after_answer
from llmagg_router.domain.hedging import Race
from llmagg_router.domain.ports import CircuitState, KeyOutcome, Observed, Reservation, RouterPorts, Usage
from llmagg_router.domain.upstream import Candidate, Failure, UpstreamError

log = logging.getLogger(__name__)
tracer = trace.get_tracer("llmagg.router")

# Failures that say the provider's model is unwell: they count toward its circuit (a failed
# connection counts toward its endpoint's instead).
_OUTAGES = frozenset({Failure.SERVER, Failure.TIMEOUT, Failure.BAD_RESPONSE, Failure.NOT_FOUND})


class QuotaDenied(Exception):
    """The ledger has no room for this candidate now; it is skipped without calling it."""

    def __init__(self, retry_after_s: float | None) -> None:
        super().__init__("quota exhausted")
        self.retry_after_s = retry_after_s


def describe(candidate: Candidate) -> str:
    return f"{candidate.provider.id}/{candidate.model_id} via {candidate.account.alias}"


def usage_of(body: dict[str, Any]) -> Usage | None:
    """OpenAI's `usage` object of a response or of a stream's last chunk, when the provider sent one."""
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt, completion)


def sampled_trace_id(span: trace.Span) -> str:
    """The trace id of a span, or of the current one when tracing is off in this process (the no-op span),
    when the trace is sampled: only then does the tracing backend keep it. "" otherwise."""
    context = span.get_span_context()
    if not context.is_valid:
        context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid and context.trace_flags.sampled else ""


@dataclass(frozen=True)
class Answer:
    """What an attempt that succeeded learned of the provider's answer."""

    usage: Usage | None
    latency_ms: float  # what ranks the provider against its peers: time to the answer, or to first content
    response_model: str | None = None
    finish_reasons: tuple[str, ...] = ()

    @classmethod
    def of(cls, body: dict[str, Any], latency_ms: float, finish_reasons: tuple[str, ...] | None = None) -> Answer:
        """From a whole response, or from the last chunk of a stream (with the stream's `finish_reasons`)."""
        model = body.get("model")
        if finish_reasons is None:
            finish_reasons = tuple(
                str(choice["finish_reason"]) for choice in body.get("choices") or () if choice.get("finish_reason")
            )
        return cls(usage_of(body), latency_ms, model if isinstance(model, str) else None, finish_reasons)


@dataclass(frozen=True)
class AttemptPlan:
    """What every attempt of one request shares."""

    operation: str  # "chat" | "embeddings", as GenAI conventions name operations
    default_cooldown_s: float
    clock: Callable[[], float] = time.monotonic
    client_id: str = ""  # who the request is for (the gateway's x-llmagg-client-id)
    requested_model: str = ""  # what the client asked for ("auto", an alias), for the usage ledger


class Attempt:
    def __init__(
        self, ports: RouterPorts, candidate: Candidate, number: int, plan: AttemptPlan, estimated_tokens: int
    ) -> None:
        self.candidate = candidate
        self.number = number
        self._ports = ports
        self._plan = plan
        self._estimated_tokens = estimated_tokens  # what it reserves (no answer is longer than its model's window)
        self._reservation: Reservation | None = None
        self.span: trace.Span = trace.INVALID_SPAN
        self._started = 0.0
        self._ended = False
        # The rate-limit headers of the provider's answer, once it has answered (for the ledger).
        self.quota_headers: Mapping[str, str] = {}
        self.race: Race | None = None  # the hedged request's race this attempt runs in
        self.answer: Answer | None = None  # once it succeeded (the meta-controller learns from it)
        self.route_reason = ""  # why the router tried this candidate (x-llmagg-route-reason)
        self.trace_id = ""  # set when the attempt's trace is sampled (kept by the tracing backend)

    @property
    def client_id(self) -> str:
        """Who the request is for (the gateway's x-llmagg-client-id)."""
        return self._plan.client_id

    async def begin(self) -> Secret | None:
        """Reserve quota (QuotaDenied when there is none), lease the key, open the span."""
        candidate = self.candidate
        plan = self._plan
        reservation = await self._ports.quota.reserve(candidate.quota_key, self._estimated_tokens, plan.client_id)
        if not reservation.granted:
            raise QuotaDenied(reservation.retry_after_s)
        self._reservation = reservation
        try:
            secret = await self._ports.keys.lease(candidate.account)
        except BaseException:
            self._reservation = None
            await self._ports.quota.settle(reservation, None, "not_sent")
            raise
        operation = self._plan.operation
        self.span = tracer.start_span(
            f"{operation} {candidate.model_id}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": candidate.provider.id,
                "gen_ai.request.model": candidate.model_id,
                "llmagg.account": candidate.account.alias,
                "llmagg.attempt": self.number,
            },
        )
        self.trace_id = sampled_trace_id(self.span)
        self._started = self._plan.clock()
        return secret

    def content_arrived(self) -> None:
        """The provider's first content is here: in a hedged request, this attempt claims the request (or
        raises HedgeLost when another attempt already has)."""
        if self.race is not None:
            self.race.claim(self)

    def elapsed_ms(self) -> float:
        return (self._plan.clock() - self._started) * 1000

    async def succeed(
        self, answer: Answer, first_chunk_ms: float | None = None, after: AfterAnswer | None = None
    ) -> None:
        """The provider answered in full. Its span and metrics (nothing routing reads) may wait for `after`,
        with the times of now."""
        if self._close():
            return
        self.answer = answer
        candidate = self.candidate
        health = self._ports.health
        health.record_success(candidate.model_circuit)
        health.record_success(candidate.endpoint_circuit)
        health.record_latency(candidate.provider.id, candidate.model_id, answer.latency_ms)
        after_answer(after, self._record_success, answer, first_chunk_ms, self.elapsed_ms() / 1000, time.time_ns())
        await self._ports.keys.report(candidate.account, KeyOutcome.ACCEPTED)
        await self._settle(answer.usage, "ok", self._observed(200, self.quota_headers, first_token_ms=first_chunk_ms))

    def _record_success(self, answer: Answer, first_chunk_ms: float | None, elapsed_s: float, ended_ns: int) -> None:
        attributes: dict[str, Any] = {"llmagg.outcome": "ok"}
        if answer.response_model:
            attributes["gen_ai.response.model"] = answer.response_model
        if answer.finish_reasons:
            attributes["gen_ai.response.finish_reasons"] = answer.finish_reasons
        if answer.usage:
            attributes["gen_ai.usage.input_tokens"] = answer.usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = answer.usage.completion_tokens
        if first_chunk_ms is not None:
            attributes["llmagg.time_to_first_chunk_ms"] = first_chunk_ms
        self.span.set_attributes(attributes)
        self.span.end(end_time=ended_ns)
        self._measure("ok", first_chunk_ms, answer.usage, elapsed_s)

    async def fail(self, error: UpstreamError) -> None:
        """Learn from the failure: cool the account down, disable its key or count toward the circuit."""
        if self._close():
            return
        candidate = self.candidate
        provider, alias, model = candidate.provider.id, candidate.account.alias, candidate.model_id
        failure = error.failure
        span = self.span
        if failure is Failure.RATE_LIMITED:
            if error.retry_after_s is None:
                error.retry_after_s = self._plan.default_cooldown_s
            self._ports.health.cool_down(provider, alias, candidate.quota_model, error.retry_after_s)
            span.add_event(
                "cooldown", {"llmagg.retry_after_s": error.retry_after_s, "llmagg.model": candidate.quota_model}
            )
        elif failure is Failure.CONNECT:
            self._count_toward(candidate.endpoint_circuit)
        elif failure in _OUTAGES:
            self._count_toward(candidate.model_circuit)
        span.set_attributes({"llmagg.outcome": "failed", "error.type": failure.value})
        if error.retry_after_s is not None:
            span.set_attribute("llmagg.retry_after_s", error.retry_after_s)
        span.set_status(trace.Status(trace.StatusCode.ERROR, failure.value))
        span.end()
        self._measure(failure.value)
        log.warning(
            "attempt failed: %s (%s)",
            describe(candidate),
            failure.value,
            extra=log_fields(
                provider=provider, model=model, account=alias, reason=failure.value, status=error.status,
                detail=error.message,
            ),
        )  # fmt: skip
        if failure is Failure.AUTH:
            await self._ports.keys.report(candidate.account, KeyOutcome.REJECTED)
        observed = self._observed(error.status or 0, error.headers, error.retry_after_s, error.quota_id)
        await self._settle(None, failure.value, observed)

    def _count_toward(self, circuit: str) -> None:
        health = self._ports.health
        was_open = health.circuit_state(circuit) is CircuitState.OPEN
        health.record_failure(circuit)
        if not was_open and health.circuit_state(circuit) is CircuitState.OPEN:
            self.span.add_event("circuit_opened", {"llmagg.circuit": circuit})

    async def abandon(self, timed_out: bool = False) -> None:
        """The caller went away (or the deadline passed) before the attempt ended.

        `timed_out`: the provider had already been silent for longer than its first byte may take, so
        its silence counts against it as a timeout (a hung provider must open its circuit even when
        every client gives up before the router's own timeout does).
        """
        if self._close():
            return
        if timed_out:
            self._count_toward(self.candidate.model_circuit)
        outcome = "timeout" if timed_out else "abandoned"
        self.span.set_attribute("llmagg.outcome", outcome)
        self.span.end()
        self._measure(outcome)
        await self._settle(None, outcome, self._observed())

    def _measure(
        self,
        outcome: str,
        first_chunk_ms: float | None = None,
        usage: Usage | None = None,
        elapsed_s: float | None = None,
    ) -> None:
        candidate = self.candidate
        self._ports.metrics.attempt_ended(
            self._plan.operation,
            candidate.provider.id,
            candidate.model.id if candidate.model else None,
            outcome,
            self.elapsed_ms() / 1000 if elapsed_s is None else elapsed_s,
            first_chunk_ms / 1000 if first_chunk_ms is not None else None,
            usage,
        )

    def _close(self) -> bool:
        """Mark the attempt ended; True when it already was."""
        ended, self._ended = self._ended, True
        return ended

    def _observed(self, *args: Any, **fields: Any) -> Observed:
        return Observed(
            self.elapsed_ms(), *args, requested_model=self._plan.requested_model, trace_id=self.trace_id, **fields
        )

    async def _settle(self, usage: Usage | None, outcome: str, observed: Observed) -> None:
        if self._reservation is not None:
            await self._ports.quota.settle(self._reservation, usage, outcome, observed)
