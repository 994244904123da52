"""Where the meta-controller meets a request's walk: it orders an `auto` request's candidates (the
reasons go out as `x-llmagg-route-reason`) and learns from every attempt's outcome. All of it is local
and synchronous; the stats store writes out in the background."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmagg_router.domain.answer_quality import answer_quality
from llmagg_router.domain.attempt import Attempt
from llmagg_router.domain.meta_controller import MetaController, arm_of
from llmagg_router.domain.ports import RouterMetrics
from llmagg_router.domain.request import ParsedRequest
from llmagg_router.domain.resolver import AUTO, Resolution
from llmagg_router.domain.task_profile import profile_of
from llmagg_router.domain.upstream import Failure, UpstreamError

# Failures that say something about the model; a rate limit, a bad request or a too-long prompt do not.
_MODEL_FAILURES = frozenset({Failure.SERVER, Failure.TIMEOUT, Failure.BAD_RESPONSE, Failure.NOT_FOUND})
ASKED = "model asked"


def is_auto(request: ParsedRequest) -> bool:
    return bool(request.asked) and request.asked[0].base == AUTO and not request.preferences.fallbacks


def planned(
    meta: MetaController, request: ParsedRequest, resolution: Resolution
) -> tuple[Resolution, str, dict[str, str]]:
    """An `auto` request's resolution with its candidates in the controller's order, its profile, the reasons."""
    assert is_auto(request)
    profile = profile_of(request).key
    choice = meta.choose(profile, resolution.candidates, request.quality)
    return replace(resolution, candidates=choice.candidates), profile, choice.reasons


def count_choice(metrics: RouterMetrics, profile: str, resolution: Resolution, reasons: dict[str, str]) -> None:
    """The model put first and why, as a metric (an `auto` request only: it has reasons)."""
    if reasons and resolution.candidates:
        arm = arm_of(resolution.candidates[0])
        reason = reasons.get(arm, "")
        metrics.meta_choice(profile, arm, "thompson" if reason.startswith("thompson") else "only_candidate")


def reason_for(reasons: dict[str, str], attempt: Attempt) -> str:
    return reasons.get(arm_of(attempt.candidate), ASKED)


def learn_served(
    meta: MetaController, profile: str, request: ParsedRequest, attempt: Attempt, served: Any, elapsed_ms: float
) -> None:
    """A served attempt: its time to first content, tokens per second and what its answer shows. `elapsed_ms`:
    how long the attempt had taken when it was served (its answer read whole, or a stream's first content)."""
    body = getattr(served, "body", None)
    if isinstance(body, dict):  # a whole answer
        answer = attempt.answer
        ttft_ms = answer.latency_ms if answer else elapsed_ms
        elapsed_s = elapsed_ms / 1000
        tokens_per_s = None
        if answer and answer.usage and answer.usage.completion_tokens:
            generating_s = max(elapsed_s - ttft_ms / 1000, 0) or elapsed_s
            tokens_per_s = answer.usage.completion_tokens / generating_s if generating_s > 0 else None
        quality = answer_quality(request.upstream_body, body)
        request_id = body.get("id") if isinstance(body.get("id"), str) else None
        meta.succeeded(profile, attempt.candidate, ttft_ms, tokens_per_s, quality, request_id, attempt.client_id)
    else:  # a stream, at its first content: what it answers is not known yet
        meta.succeeded(profile, attempt.candidate, elapsed_ms, None, None, None)


def learn_failed(meta: MetaController, profile: str, attempt: Attempt, error: UpstreamError) -> None:
    if error.failure in _MODEL_FAILURES:
        meta.failed(profile, attempt.candidate)
