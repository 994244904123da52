"""What the router counts: requests, attempts by outcome, fallbacks, tokens, cooldowns and circuits."""

import pytest

from llmagg.common.errors import ServiceError
from llmagg_router.adapters.prometheus_metrics import HealthCollector
from llmagg_router.domain.after_answer import AfterAnswer
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


async def test_an_answer_taken_with_its_after_work_is_recorded_only_when_that_work_runs(
    make_router, upstream, metrics, caplog
):
    upstream.on("fast", ANSWER)
    after = AfterAnswer()
    caplog.set_level("INFO", logger="llmagg_router.domain.router")
    result = await make_router().complete({**CHAT_BODY, "model": "llama-8b"}, after=after)
    assert result.body["choices"][0]["message"]["content"] == "fine"
    ok = {"operation": "chat", "provider": "fast", "model": "llama-8b", "outcome": "ok"}
    recorded = [
        ("attempts", "llmagg_router_attempts_total", ok),
        ("requests", "llmagg_router_requests_total", {"operation": "chat", "outcome": "ok"}),
    ]
    served_lines = [r for r in caplog.records if "-> fast/llama-8b" in r.getMessage()]
    assert [value(metrics, name, **labels) for _, name, labels in recorded] == [0, 0]
    assert served_lines == []
    after.run()
    assert [value(metrics, name, **labels) for _, name, labels in recorded] == [1, 1]
    assert len([r for r in caplog.records if "-> fast/llama-8b" in r.getMessage()]) == 1
    after.run()  # each piece once
    assert [value(metrics, name, **labels) for _, name, labels in recorded] == [1, 1]
