"""One try of one candidate: reserve quota, lease the key, call inside a span, then settle or learn.

The unary and the streaming paths both go through this step; they differ only in what the call is
and in when it ends (a stream's attempt ends with the stream).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from llmagg.common.logging import log_fields
from llmagg.common.secrets import Secret
from llmagg_router.domain.ports import KeyOutcome, Reservation, RouterPorts, Usage
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


class Attempt:
    def __init__(
        self,
        ports: RouterPorts,
        candidate: Candidate,
        number: int,
        estimated_tokens: int,
        default_cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.candidate = candidate
        self.number = number
        self._ports = ports
        self._estimated_tokens = estimated_tokens
        self._default_cooldown_s = default_cooldown_s
        self._reservation: Reservation | None = None
        self._clock = clock
        self.span: trace.Span = trace.INVALID_SPAN
        self._started = 0.0
        self._ended = False

    async def begin(self) -> Secret | None:
        """Reserve quota (QuotaDenied when there is none), lease the key, open the span."""
        candidate = self.candidate
        reservation = await self._ports.quota.reserve(candidate.quota_key, self._estimated_tokens)
        if not reservation.granted:
            raise QuotaDenied(reservation.retry_after_s)
        self._reservation = reservation
        try:
            secret = await self._ports.keys.lease(candidate.account)
        except BaseException:
            await self._ports.quota.settle(reservation, None, "not_sent")
            raise
        self.span = tracer.start_span(
            "router.attempt",
            attributes={
                "llmagg.provider": candidate.provider.id,
                "llmagg.model": candidate.model_id,
                "llmagg.account": candidate.account.alias,
                "llmagg.attempt": self.number,
            },
        )
        self._started = self._clock()
        return secret

    def elapsed_ms(self) -> float:
        return (self._clock() - self._started) * 1000

    async def succeed(self, usage: Usage | None, latency_ms: float) -> None:
        """The provider answered in full; `latency_ms` is what ranks it against its peers."""
        if self._close():
            return
        candidate = self.candidate
        health = self._ports.health
        health.record_success(candidate.model_circuit)
        health.record_success(candidate.endpoint_circuit)
        health.record_latency(candidate.provider.id, candidate.model_id, latency_ms)
        self.span.set_attribute("llmagg.outcome", "ok")
        self.span.end()
        await self._ports.keys.report(candidate.account, KeyOutcome.ACCEPTED)
        await self._settle(usage, "ok")

    async def fail(self, error: UpstreamError) -> None:
        """Learn from the failure: cool the account down, disable its key or count toward the circuit."""
        if self._close():
            return
        candidate = self.candidate
        provider, alias, model = candidate.provider.id, candidate.account.alias, candidate.model_id
        failure = error.failure
        if failure is Failure.RATE_LIMITED:
            if error.retry_after_s is None:
                error.retry_after_s = self._default_cooldown_s
            self._ports.health.cool_down(provider, alias, candidate.quota_model, error.retry_after_s)
        elif failure is Failure.CONNECT:
            self._ports.health.record_failure(candidate.endpoint_circuit)
        elif failure in _OUTAGES:
            self._ports.health.record_failure(candidate.model_circuit)
        self.span.set_attributes({"llmagg.outcome": "failed", "llmagg.reason": failure.value})
        self.span.set_status(trace.Status(trace.StatusCode.ERROR, failure.value))
        self.span.end()
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
        await self._settle(None, failure.value)

    async def abandon(self, timed_out: bool = False) -> None:
        """The caller went away (or the deadline passed) before the attempt ended.

        `timed_out`: the provider had already been silent for longer than its first byte may take, so
        its silence counts against it as a timeout (a hung provider must open its circuit even when
        every client gives up before the router's own timeout does).
        """
        if self._close():
            return
        if timed_out:
            self._ports.health.record_failure(self.candidate.model_circuit)
        outcome = "timeout" if timed_out else "abandoned"
        self.span.set_attribute("llmagg.outcome", outcome)
        self.span.end()
        await self._settle(None, outcome)

    def _close(self) -> bool:
        """Mark the attempt ended; True when it already was."""
        ended, self._ended = self._ended, True
        return ended

    async def _settle(self, usage: Usage | None, outcome: str) -> None:
        if self._reservation is not None:
            await self._ports.quota.settle(self._reservation, usage, outcome)
