"""`model: "ensemble"`: several models in parallel, one answer chosen, every candidate reported."""

from __future__ import annotations

import random

import pytest

from llmagg.common.errors import ServiceError
from llmagg_router.adapters.memory_routing_stats import MemoryRoutingStats
from llmagg_router.domain.meta_controller import MetaController
from llmagg_router.domain.upstream import Failure, UpstreamError

from .test_meta_controller import ModelUpstream

THREE = ["fast/llama-8b", "smart/big-model", "shared/a:free"]


@pytest.fixture
def ensemble(make_router):
    def build(answers, default="Paris"):
        upstream = ModelUpstream(answers, default=default)
        router = make_router(stream_upstream=False)
        router.adapters = {"openai": upstream}
        router.meta = MetaController(MemoryRoutingStats(), random.Random(1))
        return router, upstream

    return build


def ask(strategy="best", models=THREE, **fields):
    return {
        "model": "ensemble",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "ensemble": {"models": models, "strategy": strategy},
        **fields,
    }


async def test_vote_returns_the_answer_most_candidates_agree_on(ensemble):
    router, upstream = ensemble({"llama-8b": "Lyon"})
    result = await router.complete(ask("vote"))
    assert result.body["choices"][0]["message"]["content"] == "Paris"
    assert sorted(upstream.calls) == ["a:free", "big-model", "llama-8b"]
    report = result.body["ensemble"]
    assert report["strategy"] == "vote"
    assert [(c["model"], c["agreement"], c["chosen"]) for c in report["candidates"]] == [
        ("fast/llama-8b", 0.333, False),
        ("smart/big-model", 0.667, True),
        ("shared/a:free", 0.667, False),
    ]
    assert report["candidates"][1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 10}
    assert result.route.reason == "ensemble; strategy=vote; answered=3/3"
    assert router.meta.scores()["chat"]["fast/llama-8b"]["quality"] == pytest.approx(1 / 3)


async def test_best_passes_over_a_refusal(ensemble):
    router, _ = ensemble({"llama-8b": "I'm sorry, I can't help with that.", "big-model": ""})
    result = await router.complete(ask("best"))
    assert (result.route.provider, result.route.model) == ("shared", "a:free")
    assert [c["score"] for c in result.body["ensemble"]["candidates"]] == [0.1, 0.0, 0.5]


async def test_fuse_picks_the_answer_closest_to_the_others(ensemble):
    router, _ = ensemble(
        {"llama-8b": "Paris.", "big-model": "Paris is the capital.", "a:free": "Berlin is the capital."}
    )
    result = await router.complete(ask("fuse"))
    assert result.body["choices"][0]["message"]["content"] == "Paris is the capital."
    assert [c["agreement"] for c in result.body["ensemble"]["candidates"]] == [0.125, 0.425, 0.3]


async def test_a_failed_candidate_never_fails_the_request(ensemble):
    router, _ = ensemble({"big-model": UpstreamError(Failure.SERVER, "boom", status=500)})
    result = await router.complete(ask("vote", models=["smart/big-model", "fast/llama-8b"]))
    assert result.route.model == "llama-8b"
    failed = result.body["ensemble"]["candidates"][0]
    assert (failed["model"], failed["error"]["code"], failed["chosen"]) == (
        "smart/big-model",
        "all_candidates_failed",
        False,
    )


async def test_when_every_candidate_fails_the_first_error_answers(ensemble):
    router, _ = ensemble({}, default="x")
    router.adapters["openai"].answers = {
        m: UpstreamError(Failure.SERVER, "boom", status=500) for m in ("big-model", "llama-8b")
    }
    with pytest.raises(ServiceError) as failed:
        await router.complete(ask(models=["smart/big-model", "fast/llama-8b"]))
    assert failed.value.code == "all_candidates_failed"


async def test_a_count_takes_autos_first_distinct_models(ensemble):
    router, upstream = ensemble({})
    body = ask()
    body["ensemble"] = {"count": 2}
    result = await router.complete(body)
    assert sorted(upstream.calls) == ["big-model", "llama-70b"]  # static auto's first two models
    assert len(result.body["ensemble"]["candidates"]) == 2


@pytest.mark.parametrize(
    ("spec", "param"),
    [
        ({"strategy": "median"}, "ensemble.strategy"),
        ({"count": 9}, "ensemble.count"),
        ({"models": ["only-one"]}, "ensemble.models"),
        ("three", "ensemble"),
    ],
)
async def test_a_bad_ensemble_is_a_400_before_any_call(ensemble, spec, param):
    router, upstream = ensemble({})
    with pytest.raises(ServiceError) as bad:
        await router.complete({**ask(), "ensemble": spec})
    assert (bad.value.code, bad.value.param) == ("invalid_ensemble", param)
    assert upstream.calls == []


async def test_an_ensemble_does_not_stream(ensemble):
    router, _ = ensemble({})
    for call in (router.complete, router.open_stream):
        with pytest.raises(ServiceError) as bad:
            await call(ask(stream=True))
        assert (bad.value.code, bad.value.param) == ("invalid_ensemble", "stream")
