"""One request as metrics, the RPC's span and the log see it: what was asked, what served it, how it ended."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry import trace

from llmagg.common.errors import ServiceError
from llmagg.common.logging import log_fields
from llmagg_router.domain.attempt import Answer, Attempt
from llmagg_router.domain.ports import RouterMetrics
from llmagg_router.domain.request import ParsedRequest

# The request log keeps the logger it had when the router was one module (log filters may select it).
log = logging.getLogger("llmagg_router.domain.router")


@dataclass(frozen=True)
class Route:
    """What served a request: the provider, its model id, the account and how many attempts it took."""

    provider: str
    model: str
    account: str
    attempts: int
    reason: str = ""  # why this candidate (x-llmagg-route-reason)


class RequestRecord:
    """One request as metrics, the RPC's span and the log see it: what was asked, what served it, how it ended.

    With `trace_content` the span also holds the messages asked and answered (GenAI's opt-in
    `gen_ai.input.messages` / `gen_ai.output.messages`, as OpenAI JSON).
    """

    def __init__(
        self,
        metrics: RouterMetrics,
        request: ParsedRequest,
        clock: Callable[[], float],
        trace_content: bool,
    ) -> None:
        self._metrics, self._operation, self._model, self._clock = (
            metrics,
            request.operation.value,
            request.model,
            clock,
        )
        self.trace_content = trace_content
        self._started = clock()
        self._span = trace.get_current_span()
        self._span.set_attributes({"gen_ai.operation.name": self._operation, "gen_ai.request.model": request.model})
        if trace_content and self._span.is_recording():
            asked = request.upstream_body.get("messages", request.upstream_body.get("input"))
            self._span.set_attribute("gen_ai.input.messages", orjson.dumps(asked).decode())

    def served(
        self, route: Route, answer: Answer, output: list[dict[str, Any]] | None = None, at: float | None = None
    ) -> None:
        """`at`: when it was served (the clock's), if not now."""
        attributes: dict[str, Any] = {"gen_ai.provider.name": route.provider, "llmagg.attempts": route.attempts}
        if self.trace_content and output is not None:
            attributes["gen_ai.output.messages"] = orjson.dumps(output).decode()
        if answer.response_model:
            attributes["gen_ai.response.model"] = answer.response_model
        if answer.usage:
            attributes["gen_ai.usage.input_tokens"] = answer.usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = answer.usage.completion_tokens
        self._span.set_attributes(attributes)
        milliseconds = round(self._ended("ok", route.attempts, at) * 1000)
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

    def _ended(self, outcome: str, attempts: int, at: float | None = None) -> float:
        seconds = (self._clock() if at is None else at) - self._started
        self._metrics.request_ended(self._operation, outcome, seconds, attempts)
        return seconds


def route_of(attempt: Attempt) -> Route:
    candidate = attempt.candidate
    return Route(
        candidate.provider.id, candidate.model_id, candidate.account.alias, attempt.number, attempt.route_reason
    )
