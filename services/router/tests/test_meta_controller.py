"""The meta-controller: `auto` learns, on seeded runs, which model answers best per task profile."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from typing import Any

import pytest

from llmagg.common.errors import ServiceError
from llmagg_router.adapters.memory_routing_stats import MemoryRoutingStats
from llmagg_router.domain.after_answer import AfterAnswer
from llmagg_router.domain.meta_controller import MetaController, arm_of
from llmagg_router.domain.request import CallerHints
from llmagg_router.domain.routing_stats import ArmStats
from llmagg_router.domain.task_profile import profile_of
from llmagg_router.domain.upstream import Failure, UpstreamError

JSON_ASK = {"response_format": {"type": "json_object"}}


class ModelUpstream:
    """Answers per model id: a function of the request body (or an UpstreamError to raise)."""

    def __init__(self, answers: dict[str, Any], default: str = '{"ok": true}') -> None:
        self.answers, self.default = answers, default
        self.calls: list[str] = []
        self.providers: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.served = 0

    async def request(self, candidate, key, operation, body):
        self.calls.append(candidate.model_id)
        self.providers.append(candidate.provider.id)
        self.bodies.append(body)
        answer = self.answers.get(candidate.model_id, self.default)
        if isinstance(answer, UpstreamError):
            raise answer
        self.served += 1
        return {
            "id": f"req-{self.served}",
            "model": candidate.model_id,
            "choices": [{"message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 10},
        }

    async def close(self) -> None:
        pass


@pytest.fixture
def meta() -> MetaController:
    return MetaController(MemoryRoutingStats(), random.Random(7))


@pytest.fixture
def routed(make_router, meta):
    def build(upstream: ModelUpstream):
        router = make_router(stream_upstream=False)
        router.adapters = {"openai": upstream}
        router.meta = meta
        return router

    return build


def chat(text: str, **fields: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **fields}


async def test_without_the_controller_auto_always_takes_the_top_static_tier(make_router):
    upstream = ModelUpstream({"llama-70b": "I'm sorry, I can't help with that."})
    router = make_router(stream_upstream=False)
    router.adapters = {"openai": upstream}
    for _ in range(30):
        await router.complete(chat("List two fruits.", **JSON_ASK))
    assert Counter(upstream.calls) == {"llama-70b": 30}


async def test_auto_learns_to_leave_a_top_tier_model_that_refuses_json_tasks(routed):
    upstream = ModelUpstream({"llama-70b": "I'm sorry, I can't help with that."})
    router = routed(upstream)
    for _ in range(30):
        await router.complete(chat("List two fruits.", **JSON_ASK))
    first, last = upstream.calls[:10], upstream.calls[-10:]
    assert Counter(first) == {"b:free": 7, "llama-70b": 1, "a:free": 1, "big-model": 1}
    assert Counter(last) == {"b:free": 10}


async def test_what_is_learned_is_kept_per_task_profile(routed, meta):
    """llama-70b refuses JSON tasks only: on chat it keeps being chosen."""
    upstream = ModelUpstream({"llama-70b": "I'm sorry, I can't help with that."})
    router = routed(upstream)
    for _ in range(20):
        await router.complete(chat("List two fruits.", **JSON_ASK))
    upstream.answers, upstream.default = {}, "fine"
    upstream.calls.clear()
    for _ in range(10):
        await router.complete(chat("Tell me about your day."))
    assert Counter(upstream.calls) == {"b:free": 4, "big-model": 4, "llama-70b": 2}
    scores = meta.scores()
    assert (scores["json"]["fast/llama-70b"]["attempts"], scores["json"]["fast/llama-70b"]["quality"]) == (1, 0.1)
    assert (scores["chat"]["fast/llama-70b"]["attempts"], scores["chat"]["fast/llama-70b"]["quality"]) == (2, None)


async def test_a_failing_model_is_learned_and_falls_back_within_the_request(routed, meta):
    upstream = ModelUpstream({"llama-70b": UpstreamError(Failure.SERVER, "boom", status=500)}, default="hello")
    router = routed(upstream)
    results = [await router.complete(chat("Say hello.")) for _ in range(20)]
    assert all(r.route.model != "llama-70b" for r in results)
    # Only the first request tried it (on both its accounts): the sampled choice, then the static order.
    assert Counter(upstream.calls) == {
        "llama-70b": 2,
        "big-model": 11,
        "a:free": 4,
        "b:free": 4,
        "meta/llama-70b-instruct": 1,
    }
    assert results[0].route.reason == "fallback in static order; profile=chat"
    assert results[1].route.reason.startswith("thompson; profile=chat; of=7;")
    assert meta.scores()["chat"]["fast/llama-70b"]["success_rate"] == 0.0


async def test_every_answer_says_why_it_was_routed(routed):
    router = routed(ModelUpstream({}))
    result = await router.complete(chat("What is 2 + 2?"))
    assert result.route.reason.startswith("thompson; profile=math; of=7; sample=")
    asked = await router.complete({"model": "llama-8b", "messages": [{"role": "user", "content": "hi"}]})
    assert asked.route.reason == "model asked"


async def test_free_models_still_come_before_paid_ones(routed):
    upstream = ModelUpstream({}, default="fine")
    router = routed(upstream)
    for _ in range(10):
        await router.complete(chat("hi"))
    assert "paid" not in upstream.providers  # its trial credits are never spent while a free model answers


async def test_client_feedback_updates_the_quality_of_the_model_that_answered(routed, meta):
    router = routed(ModelUpstream({}, default="an answer"))
    result = await router.complete(chat("Tell me a story."))
    served = await meta.feedback(result.body["id"], 0.0)
    assert served.arm == f"{result.route.provider}/{result.route.model}"
    assert meta.scores()["chat"][served.arm]["quality"] == 0.0
    with pytest.raises(ServiceError) as unknown:
        await meta.feedback("no-such-request", 1.0)
    assert (unknown.value.code, unknown.value.kind.name) == ("unknown_request_id", "NOT_FOUND")
    with pytest.raises(ServiceError) as bad:
        await meta.feedback(result.body["id"], 3)
    assert bad.value.code == "invalid_score"


async def test_feedback_is_taken_only_from_the_client_that_asked_or_an_admin(routed, meta):
    router = routed(ModelUpstream({}, default="an answer"))
    result = await router.complete(chat("Tell me a story."), caller=CallerHints(client_id="key-a"))
    answer = result.body["id"]
    with pytest.raises(ServiceError) as other:
        await meta.feedback(answer, 0.0, client_id="key-b")
    assert (other.value.code, other.value.kind.name) == ("unknown_request_id", "NOT_FOUND")  # as if unknown
    assert meta.scores()["chat"][f"{result.route.provider}/{result.route.model}"]["judged"] == 0
    assert (await meta.feedback(answer, 1.0, client_id="key-a")).client == "key-a"
    again = await router.complete(chat("Tell me a story."), caller=CallerHints(client_id="key-a"))
    assert (await meta.feedback(again.body["id"], 0.0, client_id="admin-key", admin=True)).arm == "fast/llama-70b"
    assert meta.scores()["chat"]["fast/llama-70b"]["quality"] == 0.5


async def test_feedback_is_taken_once_per_answer(routed, meta):
    router = routed(ModelUpstream({}, default="an answer"))
    result = await router.complete(chat("Tell me a story."))
    served = await meta.feedback(result.body["id"], 0.0)
    with pytest.raises(ServiceError) as replayed:
        await meta.feedback(result.body["id"], 0.0)
    assert (replayed.value.code, replayed.value.kind.name) == ("unknown_request_id", "NOT_FOUND")  # as if unknown
    assert meta.scores()["chat"][served.arm]["judged"] == 1


def test_stats_gone_negative_across_replicas_never_break_the_choice(make_resolver):
    """Discounting replicas each subtract their stale view, so shared totals can dip below zero."""
    candidates = make_resolver().resolve("auto", None, None).candidates
    store = MemoryRoutingStats()
    below_zero = ArmStats(successes=-3, failures=-1, good=-2, bad=-0.5, ttft_ms_sum=-5000, ttft_n=-1)
    for candidate in candidates:
        store.record("chat", arm_of(candidate), below_zero)
    meta = MetaController(store, random.Random(7))
    assert sorted(map(arm_of, meta.choose("chat", candidates, "fastest").candidates)) == sorted(map(arm_of, candidates))
    assert 0 <= meta.quality_estimate("chat", candidates[0]) <= 1


def _two_models(make_resolver, big_tier: int):
    """fast/llama-8b (tier 1) and smart/big-model (tier `big_tier`, as a catalogue change would set it)."""
    from dataclasses import replace as changed

    candidates = make_resolver().resolve("auto", None, None).candidates
    picked = [c for c in candidates if c.model_id in ("llama-8b", "big-model") and c.account.alias != "fast-2"]
    return [changed(c, model=changed(c.model, quality=big_tier)) if c.model_id == "big-model" else c for c in picked]


def test_the_catalogues_tier_is_the_prior_so_a_catalogue_change_moves_the_choice_at_once(make_resolver):
    """Unmeasured models are chosen by their tier's prior, read from the live catalogue at every choice."""
    firsts = {}
    for tier in (5, 1):
        meta = MetaController(MemoryRoutingStats(), random.Random(3))
        candidates = _two_models(make_resolver, tier)
        firsts[tier] = Counter(meta.choose("chat", candidates, None).candidates[0].model_id for _ in range(200))
    assert firsts == {5: {"big-model": 143, "llama-8b": 57}, 1: {"big-model": 90, "llama-8b": 110}}


GOOD_JSON, REFUSAL = '{"ok": true}', "I'm sorry, I can't help with that."


async def _degrades(make_router, discount: float) -> tuple[Counter, Counter, MetaController]:
    """60 JSON requests while only b:free answers well, then 40 after it starts refusing and a:free
    answers well instead: what the last 10 went to, and every routing choice counted by the metric."""
    meta = MetaController(MemoryRoutingStats(), random.Random(7), discount=discount)
    upstream = ModelUpstream({"b:free": GOOD_JSON}, default=REFUSAL)
    router = make_router(stream_upstream=False)
    router.adapters, router.meta = {"openai": upstream}, meta
    for _ in range(60):
        await router.complete(chat("List two fruits.", **JSON_ASK))
    upstream.answers = {"a:free": GOOD_JSON}
    upstream.calls.clear()
    for _ in range(40):
        await router.complete(chat("List two fruits.", **JSON_ASK))
    return Counter(upstream.calls[-10:]), Counter(upstream.calls), meta


async def test_with_a_discount_a_model_that_got_worse_is_dropped(make_router, metrics):
    kept, after, _ = await _degrades(make_router, discount=1.0)
    # Without forgetting, b:free's 60 good answers outweigh its 40 refusals: it keeps serving.
    assert (kept, after) == ({"b:free": 9, "big-model": 1}, {"b:free": 38, "llama-70b": 1, "big-model": 1})
    dropped, after, meta = await _degrades(make_router, discount=0.9)
    assert (dropped, after) == (
        {"a:free": 9, "b:free": 1},
        {"a:free": 23, "b:free": 12, "big-model": 3, "llama-70b": 2},
    )
    # Each observation first shrinks the model's record by the discount: it is worth under 1 / (1 - 0.9).
    assert meta.scores()["json"]["shared/b:free"]["judged"] == pytest.approx(9.9914, abs=1e-4)
    choices = {
        model: metrics.registry.get_sample_value(
            "llmagg_router_meta_choices_total", {"profile": "json", "model": model, "reason": "thompson"}
        )
        for model in ("shared/b:free", "shared/a:free", "smart/big-model", "fast/llama-70b")
    }
    assert choices == {"shared/b:free": 159, "shared/a:free": 25, "smart/big-model": 9, "fast/llama-70b": 7}
    assert sum(choices.values()) == 200  # every `auto` request of both runs counted once


async def test_a_stream_learns_its_time_to_first_content_not_when_its_learning_ran(make_router, meta, clock):
    """A stream's learning waits for its first event's write (AfterAnswer): the time it learns is the one it
    had at its first content."""
    router = make_router()
    router.meta = meta
    after = AfterAnswer()
    stream = await router.open_stream(chat("Tell me about your day.", stream=True), after=after)
    clock.now += 30  # a client slow to take the first event
    after.run()
    await stream.aclose()
    assert [arm["ttft_ms"] for arms in meta.scores().values() for arm in arms.values()] == [0.0]


async def test_a_named_models_profile_is_read_only_once_its_answer_is_on_its_way(make_router, meta, monkeypatch):
    """Only `auto` is ordered by the profile; for a named model it is what the controller learns under, read
    by the learning after the first event's write, not on the way to it."""
    from llmagg_router.domain import walk

    read: list[str] = []
    monkeypatch.setattr(walk, "profile_of", lambda request: read.append(request.model) or profile_of(request))
    router = make_router()
    router.meta = meta
    after = AfterAnswer()
    asked = {"model": "llama-70b", "messages": [{"role": "user", "content": "Solve 2x + 3 = 7."}], "stream": True}
    stream = await router.open_stream(asked, after=after)
    assert read == []
    after.run()
    await stream.aclose()
    assert read == ["llama-70b"]
    assert list(meta.scores()) == ["math"]


def test_adding_records_sums_every_field():
    names = [f.name for f in dataclasses.fields(ArmStats)]
    total = ArmStats(**{name: i + 1 for i, name in enumerate(names)})
    total.add(ArmStats(**{name: 10 * (i + 1) for i, name in enumerate(names)}))
    assert total.as_dict() == {name: 11 * (i + 1) for i, name in enumerate(names)}
