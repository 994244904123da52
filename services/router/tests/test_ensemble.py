"""`model: "ensemble"`: several models in parallel, one answer chosen, every candidate reported."""

from __future__ import annotations

import random

import pytest

from llmagg.common.errors import ServiceError
from llmagg_router.adapters.memory_routing_stats import MemoryRoutingStats
from llmagg_router.domain.ensemble_judge import parse_verdict
from llmagg_router.domain.meta_controller import MetaController
from llmagg_router.domain.ports import Usage
from llmagg_router.domain.request import CallerHints
from llmagg_router.domain.upstream import Failure, UpstreamError

from .helpers import RecordingQuota
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


async def test_fuse_without_a_judge_picks_the_answer_closest_to_the_others(ensemble):
    router, _ = ensemble(
        {
            "llama-8b": "Paris.",
            "big-model": "Paris is the capital.",
            "a:free": "Berlin is the capital.",
            JUDGE: UpstreamError(Failure.SERVER, "boom", status=500),
        }
    )
    result = await router.complete(ask("fuse"))  # the judge failed: the consensus answer
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
    body["ensemble"] = {"count": 2, "strategy": "vote"}
    result = await router.complete(body)
    assert sorted(upstream.calls) == ["big-model", "llama-70b"]  # static auto's first two models
    assert len(result.body["ensemble"]["candidates"]) == 2


@pytest.mark.parametrize(
    ("spec", "param"),
    [
        ({"strategy": "median"}, "ensemble.strategy"),
        ({"count": 9}, "ensemble.count"),
        ({"models": ["only-one"]}, "ensemble.models"),
        ({"models": ["fast/llama-8b", "fast/llama-8b"]}, "ensemble.models"),
        ({"models": ["fast/llama-8b", "ensemble"]}, "ensemble.models"),
        ({"models": THREE, "judge": "ensemble"}, "ensemble.judge"),
        ("three", "ensemble"),
        ({"models": THREE, "judge": 7}, "ensemble.judge"),
        ({"models": THREE, "judge": "no-such-model"}, "ensemble.judge"),
    ],
)
async def test_a_bad_ensemble_is_a_400_before_any_call(ensemble, spec, param):
    router, upstream = ensemble({})
    with pytest.raises(ServiceError) as bad:
        await router.complete({**ask(), "ensemble": spec})
    assert (bad.value.code, bad.value.param) == ("invalid_ensemble", param)
    assert upstream.calls == []


async def test_a_streamed_ensemble_sends_the_chosen_answer_then_the_report(ensemble):
    router, upstream = ensemble({**DISAGREE, JUDGE: "2"})
    stream = await router.open_stream(ask("best", stream=True, stream_options={"include_usage": True}))
    chunks = [chunk async for chunk in stream]
    await stream.aclose()
    assert (stream.route.provider, stream.route.model) == ("smart", "big-model")
    assert all("stream" not in body for body in upstream.bodies[:3])  # each candidate answered whole
    assert [c["choices"][0]["delta"] for c in chunks] == [{"role": "assistant", "content": "Paris"}, {}]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "stop"]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 10}
    assert chunks[1]["ensemble"]["judge"]["verdict"] == 2
    assert [c["chosen"] for c in chunks[1]["ensemble"]["candidates"]] == [False, True, False]


# --- the judge ----------------------------------------------------------------------------------------

JUDGE = "llama-70b"  # fast/llama-70b: the best free model `auto` has that is not one of THREE
DISAGREE = {"llama-8b": "Lyon", "big-model": "Paris", "a:free": "Paris"}


async def test_best_takes_the_answer_the_judge_names(ensemble):
    router, upstream = ensemble({**DISAGREE, JUDGE: "Answer 1."})
    result = await router.complete(ask("best"), caller=CallerHints(client_id="client-7"))
    assert result.body["choices"][0]["message"]["content"] == "Lyon"  # the judge overrules the majority
    assert (result.route.provider, result.route.model) == ("fast", "llama-8b")
    assert sorted(upstream.calls[:3]) == ["a:free", "big-model", "llama-8b"]
    assert (upstream.calls[3:], upstream.providers[3:]) == ([JUDGE], ["fast"])  # judged once, after all answered
    prompt = upstream.bodies[3]["messages"][1]["content"]
    assert "What is the capital of France?" in prompt
    assert "Answer 1:\nLyon\n\nAnswer 2:\nParis\n\nAnswer 3:\nParis" in prompt
    report = result.body["ensemble"]
    assert report["chosen_by"] == "judge"
    assert report["judge"] == {
        "model": "fast/llama-70b",
        "provider": "fast",
        "served_model": JUDGE,
        "verdict": 1,
        "outcome": "chosen",
        "usage": {"prompt_tokens": 5, "completion_tokens": 10},
    }
    assert [c["chosen"] for c in report["candidates"]] == [True, False, False]
    assert result.route.reason == "ensemble; strategy=best; answered=3/3; judge=fast/llama-70b; verdict=1"
    assert router.meta.scores()["chat"]["fast/llama-8b"]["quality"] == 1.0  # the verdict is a judgement


async def test_the_judge_is_metered_like_any_request(make_router):
    quota = RecordingQuota()
    router = make_router(stream_upstream=False, quota=quota)
    router.adapters = {"openai": ModelUpstream({**DISAGREE, JUDGE: "3"})}
    router.meta = MetaController(MemoryRoutingStats(), random.Random(1))
    result = await router.complete(ask("best"), caller=CallerHints(client_id="client-7"))
    assert result.route.model == "a:free"
    assert [(p, m) for p, _, m, _ in quota.reserved[3:]] == [("fast", JUDGE)]
    assert len(quota.settled) == 4 and quota.settled[3][2:] == (Usage(5, 10), "ok")
    assert quota.clients == ["client-7"] * 4


async def test_an_unreadable_verdict_falls_back_to_agreement(ensemble):
    router, upstream = ensemble({**DISAGREE, JUDGE: "They are all fine answers."})
    result = await router.complete(ask("best"))
    assert (result.route.provider, result.route.model) == ("smart", "big-model")  # "Paris" twice, first asked
    report = result.body["ensemble"]
    assert (report["chosen_by"], report["judge"]["verdict"], report["judge"]["outcome"]) == (
        "heuristics+agreement",
        None,
        "unparseable",
    )
    assert upstream.calls.count(JUDGE) == 1


async def test_a_failed_judge_never_fails_the_request(ensemble):
    router, upstream = ensemble({**DISAGREE, JUDGE: UpstreamError(Failure.SERVER, "boom", status=500)})
    result = await router.complete(ask("best"))
    assert (result.route.provider, result.route.model) == ("smart", "big-model")
    assert upstream.calls[3:] == [JUDGE, JUDGE]  # the judge's own fallback: fast's two accounts, then it gives up
    judge = result.body["ensemble"]["judge"]
    assert (judge["outcome"], judge["verdict"], judge["error"]["code"]) == ("failed", None, "all_candidates_failed")
    assert result.body["ensemble"]["chosen_by"] == "heuristics+agreement"
    assert result.route.reason == "ensemble; strategy=best; answered=3/3; judge=fast/llama-70b; verdict=failed"


async def test_a_judge_named_in_the_request_is_the_one_asked(ensemble):
    router, upstream = ensemble({**DISAGREE, "meta/llama-70b-instruct": "B"})
    body = ask("best")
    body["ensemble"]["judge"] = "smart/meta/llama-70b-instruct"
    result = await router.complete(body)
    assert result.route.model == "big-model"  # "B": the second answer
    assert (upstream.calls[3:], upstream.providers[3:]) == (["meta/llama-70b-instruct"], ["smart"])


async def test_fuse_returns_the_judges_own_answer_with_the_candidates_listed(ensemble):
    router, upstream = ensemble({**DISAGREE, JUDGE: "Paris is the capital of France."})
    result = await router.complete(ask("fuse"))
    assert result.body["choices"][0]["message"]["content"] == "Paris is the capital of France."
    assert (result.route.provider, result.route.model) == ("fast", JUDGE)
    assert "Write the best answer" in upstream.bodies[3]["messages"][1]["content"]
    report = result.body["ensemble"]
    assert (report["chosen_by"], report["judge"]["outcome"], report["judge"]["verdict"]) == ("judge", "fused", None)
    assert [(c["model"], c["chosen"]) for c in report["candidates"]] == [
        ("fast/llama-8b", False),
        ("smart/big-model", False),
        ("shared/a:free", False),
    ]


async def test_vote_asks_no_judge(ensemble):
    router, upstream = ensemble({**DISAGREE, JUDGE: "1"})
    result = await router.complete(ask("vote"))
    assert result.route.model == "big-model"
    assert JUDGE not in upstream.calls and "judge" not in result.body["ensemble"]


@pytest.mark.parametrize(
    ("text", "choice"),
    [("2", 1), ("Answer 3.", 2), ("**1**", 0), ("B", 1), (" c. ", 2), ("4", None), ("0", None), ("none", None),
     ("", None), ("2.5", None)],
)  # fmt: skip
def test_a_verdict_is_read_robustly(text, choice):
    assert parse_verdict(text, 3) == choice
