"""What the router counts: requests, attempts by outcome, fallbacks, tokens, cooldowns and circuits."""

import pytest

from llmagg.common.errors import ServiceError
from llmagg_router.adapters.prometheus_metrics import HealthCollector
from llmagg_router.domain.upstream import Failure, UpstreamError

from .helpers import CHAT_BODY


def value(metrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


ANSWER = {"id": "r", "model": "llama-8b", "choices": [{"message": {"content": "fine"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 5, "completion_tokens": 1}}  # fmt: skip


async def test_a_request_that_falls_over_twice_counts_each_attempt_its_fallbacks_and_tokens(
    make_router, upstream, metrics
):
    upstream.on(
        "fast", UpstreamError(Failure.RATE_LIMITED, "429", retry_after_s=5), UpstreamError(Failure.SERVER, "500")
    )
    upstream.on("smart", ANSWER)
    router = make_router()
    result = await router.complete({**CHAT_BODY, "model": "llama-70b", "model_quality": "fastest"})
    assert result.route.attempts == 3
    attempt = {"operation": "chat", "provider": "fast", "model": "llama-70b"}
    assert value(metrics, "llmagg_router_attempts_total", **attempt, outcome="rate_limited") == 1
    assert value(metrics, "llmagg_router_attempts_total", **attempt, outcome="server") == 1
    assert (
        value(
            metrics,
            "llmagg_router_attempts_total",
            operation="chat",
            provider="smart",
            model="meta/llama-70b-instruct",
            outcome="ok",
        )
        == 1
    )
    assert value(metrics, "llmagg_router_fallbacks_total", reason="rate_limited") == 1
    assert value(metrics, "llmagg_router_fallbacks_total", reason="server") == 1
    assert value(metrics, "llmagg_router_requests_total", operation="chat", outcome="ok") == 1
    assert value(metrics, "llmagg_router_request_attempts_sum", operation="chat") == 3
    tokens = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "smart",
        "gen_ai_request_model": "meta/llama-70b-instruct",
    }
    assert value(metrics, "gen_ai_client_token_usage_sum", **tokens, gen_ai_token_type="input") == 5
    assert value(metrics, "gen_ai_client_token_usage_sum", **tokens, gen_ai_token_type="output") == 1


async def test_a_failed_request_is_counted_by_its_error_code(make_router, upstream, metrics):
    with pytest.raises(ServiceError):
        await make_router().complete({**CHAT_BODY, "model": "no-such-model"})
    assert value(metrics, "llmagg_router_requests_total", operation="chat", outcome="model_not_found") == 1


async def test_a_model_the_registry_does_not_know_is_not_a_label(make_router, upstream, metrics):
    await make_router().complete({**CHAT_BODY, "model": "smart/anything-a-client-types"})
    assert (
        value(metrics, "llmagg_router_attempts_total", operation="chat", provider="smart", model="other", outcome="ok")
        == 1
    )


async def test_cooldowns_and_open_circuits_are_gauges_read_from_the_health_store(
    make_router, upstream, metrics, health
):
    metrics.registry.register(HealthCollector(health))
    health.cool_down("fast", "fast-1", "llama-8b", 30)
    health.cool_down("fast", "fast-2", "", 30)
    for _ in range(2):  # the fixture's threshold
        health.record_failure("smart/big-model")
    assert value(metrics, "llmagg_router_cooling_accounts", provider="fast") == 2
    assert value(metrics, "llmagg_router_open_circuits", kind="model", state="open") == 1
