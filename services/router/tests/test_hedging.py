"""Hedging: the next candidate starts beside one slow to bring content; the first with content wins and
the other is abandoned. Opt-in per request, and by setting for `model_quality: fastest`."""

import asyncio
import contextlib

import pytest

from llmagg.common.errors import ServiceError
from llmagg_router.domain.hedging import FirstContentTimes, HedgeLost, HedgeMode, Race, hedged, hedging
from llmagg_router.domain.request import CallerHints
from llmagg_router.domain.upstream import Failure, UpstreamError

from .helpers import RecordingQuota, content_chunks

CHAT = {"model": "fast/llama-8b", "messages": [{"role": "user", "content": "hi"}]}
SILENT = [60.0, *content_chunks("too late")]  # nothing for a minute: only hedging gets past it
HEDGE = CallerHints(hedge=True)


async def test_a_slow_first_attempt_is_hedged_and_the_first_with_content_wins(make_router, upstream):
    quota = RecordingQuota()
    router = make_router(quota=quota, hedge_delay_s=0.01)
    upstream.on("fast", SILENT, content_chunks("quick"))
    result = await router.complete(CHAT, caller=HEDGE)
    assert result.body["choices"][0]["message"]["content"] == "quick"
    first, second = upstream.attempted()
    assert (result.route.account, result.route.attempts) == (second[1], 2)
    await router.abandoned_settled()  # the loser finishes beside the answer, not before it
    assert [(account, outcome) for _, account, _, outcome in quota.settled] == [
        (second[1], "ok"),
        (first[1], "abandoned"),
    ]
    assert upstream.streams_closed == 2  # the loser's connection is closed too


async def test_a_stream_is_hedged_the_same_way(make_router, upstream):
    router = make_router(hedge_delay_s=0.01)
    upstream.on("fast", SILENT, content_chunks("quick", " stream"))
    stream = await router.open_stream({**CHAT, "stream": True}, caller=HEDGE)
    chunks = [chunk async for chunk in stream]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "quick stream"
    assert stream.route.attempts == 2 and len(upstream.attempted()) == 2


async def test_a_first_attempt_with_content_in_time_is_not_hedged(make_router, upstream):
    router = make_router(hedge_delay_s=30)
    upstream.on("fast", content_chunks("first"))
    result = await router.complete(CHAT, caller=HEDGE)
    assert result.body["choices"][0]["message"]["content"] == "first"
    assert len(upstream.attempted()) == 1


async def test_a_failing_attempt_is_followed_at_once_without_waiting_for_the_delay(make_router, upstream):
    router = make_router(hedge_delay_s=30)
    upstream.on("fast", UpstreamError(Failure.SERVER, "HTTP 500", status=500), content_chunks("second"))
    result = await router.complete(CHAT, caller=HEDGE)
    assert result.body["choices"][0]["message"]["content"] == "second"
    assert len(upstream.attempted()) == 2


async def test_without_asking_a_request_is_not_hedged_unless_it_wants_the_fastest(make_router, upstream):
    router = make_router(hedge_delay_s=0.01)
    upstream.on("fast", [0.2, *content_chunks("patient")])
    result = await router.complete(CHAT)
    assert result.body["choices"][0]["message"]["content"] == "patient"
    assert len(upstream.attempted()) == 1  # nothing started beside it
    upstream.on("fast", SILENT, content_chunks("quick"))
    result = await router.complete({**CHAT, "model_quality": "fastest"})
    assert result.body["choices"][0]["message"]["content"] == "quick"


async def test_when_every_hedged_attempt_fails_the_client_gets_the_usual_error(make_router, upstream):
    router = make_router(hedge_delay_s=0.01)
    upstream.on("fast", *[UpstreamError(Failure.SERVER, "HTTP 500", status=500)] * 2)
    with pytest.raises(ServiceError) as caught:
        await router.complete(CHAT, caller=HEDGE)
    assert caught.value.code == "all_candidates_failed"
    assert len(upstream.attempted()) == 2


async def test_a_client_error_beside_a_healthy_attempt_does_not_cost_its_answer(make_router, upstream):
    router = make_router(hedge_delay_s=0.01)
    upstream.on("fast", [0.3, *content_chunks("healthy")], UpstreamError(Failure.CLIENT, "HTTP 400", status=400))
    result = await router.complete(CHAT, caller=HEDGE)
    assert result.body["choices"][0]["message"]["content"] == "healthy"
    assert len(upstream.attempted()) == 2


class Attempts:
    """Attempts for `hedged` that wait for `go`, then claim the request; `launched` is set at the second."""

    def __init__(self, names: list[str]) -> None:
        self.names = iter(names)
        self.go = asyncio.Event()
        self.launched = asyncio.Event()
        self.kept: list[asyncio.Task] = []
        self.count = 0
        self.lost: list[str] = []

    async def work(self, race: Race, name: str) -> str:
        await self.go.wait()
        try:
            race.claim(name)
        except HedgeLost:
            self.lost.append(name)
            raise
        return name

    async def launch(self, race: Race):
        name = next(self.names, None)
        if name is None:
            return None
        self.count += 1
        if self.count == 2:
            self.launched.set()
        return name, self.work(race, name)

    def keep(self, task: asyncio.Task) -> None:
        self.kept.append(task)


async def test_two_attempts_with_content_at_the_same_moment_make_one_answer():
    attempts = Attempts(["first", "second"])

    async def both_launched_then_go():
        await attempts.launched.wait()
        attempts.go.set()  # both wake in the same pass of the loop

    opener = asyncio.ensure_future(both_launched_then_go())
    answer = await hedged(attempts.launch, lambda _: 0.0, lambda: RuntimeError("exhausted"), attempts.keep)
    await opener
    await asyncio.gather(*attempts.kept, return_exceptions=True)
    assert answer in ("first", "second")  # whichever claimed first
    assert attempts.lost == [{"first": "second", "second": "first"}[answer]]  # the other stopped at its claim


async def test_a_cancelled_hedged_request_leaves_no_task_behind():
    attempts = Attempts(["first", "second"])  # `go` never comes: neither brings content
    before = asyncio.all_tasks()
    request = asyncio.ensure_future(
        hedged(attempts.launch, lambda _: 0.0, lambda: RuntimeError("exhausted"), attempts.keep)
    )
    await attempts.launched.wait()
    request.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await request
    await asyncio.gather(*attempts.kept, return_exceptions=True)
    assert len(attempts.kept) == 2
    assert [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()] == []


def test_the_delay_is_the_95th_percentile_once_enough_times_are_known():
    times = FirstContentTimes(samples=20, min_samples=10)
    for ms in range(1, 10):
        times.observe("p", "m", ms * 100)
    assert times.p95_ms("p", "m") is None
    for ms in range(10, 21):
        times.observe("p", "m", ms * 100)
    assert times.p95_ms("p", "m") == 2000  # the last 20: 100..2000 ms
    assert times.p95_ms("p", "other") is None


@pytest.mark.parametrize(
    ("mode", "quality", "asked", "hedges"),
    [
        (HedgeMode.FASTEST, "fastest", None, True),
        (HedgeMode.FASTEST, "best", None, False),
        (HedgeMode.FASTEST, None, True, True),
        (HedgeMode.ALWAYS, None, None, True),
        (HedgeMode.ALWAYS, None, False, False),
        (HedgeMode.OFF, "fastest", None, False),
    ],
)
def test_who_hedges(mode, quality, asked, hedges):
    assert hedging(mode, quality, asked) is hedges
