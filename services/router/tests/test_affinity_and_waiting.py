"""A session stays on the account that served it while that account is healthy; a request that asked
to wait for capacity waits for the soonest rate-limited account instead of getting a 429."""

import pytest

from llmagg.common.errors import ServiceError
from llmagg_router.domain.affinity import Affinity
from llmagg_router.domain.after_answer import AfterAnswer
from llmagg_router.domain.request import CallerHints
from llmagg_router.domain.upstream import Failure, UpstreamError

CHAT = {"model": "fast/llama-8b", "messages": [{"role": "user", "content": "hi"}]}


def rate_limited(seconds):
    return UpstreamError(Failure.RATE_LIMITED, "HTTP 429", status=429, retry_after_s=seconds)


@pytest.fixture
def router(make_router, clock):
    return make_router(affinity=Affinity(ttl_s=600, clock=clock))


async def accounts(router, *requests) -> list[str]:
    served = []
    for body, hints in requests:
        served.append((await router.complete(body, caller=hints)).route.account)
    return served


async def test_a_session_stays_on_its_account_while_others_rotate(router):
    alice = ({**CHAT, "user": "alice"}, CallerHints())
    anonymous = (CHAT, CallerHints())
    served = await accounts(router, alice, anonymous, anonymous, alice, alice)
    assert served[0] == served[3] == served[4]
    assert served[1] != served[2]  # without a session the accounts take turns


async def test_the_session_header_wins_over_the_user_field(router):
    first = await accounts(router, ({**CHAT, "user": "alice"}, CallerHints(session="s-1")))
    again = await accounts(router, ({**CHAT, "user": "bob"}, CallerHints(session="s-1")))
    assert first == again


async def test_a_session_whose_account_is_rate_limited_moves_and_then_stays(router, upstream):
    alice = ({**CHAT, "user": "alice"}, CallerHints())
    [before] = await accounts(router, alice)
    upstream.on("fast", rate_limited(30))
    after = await accounts(router, alice, alice, alice)
    assert before not in after and len(set(after)) == 1


async def test_a_session_forgotten_after_its_ttl_rotates_again(router, clock):
    alice, anonymous = ({**CHAT, "user": "alice"}, CallerHints()), (CHAT, CallerHints())
    first, again = await accounts(router, alice, alice)
    clock.now += 601
    moved_on, later = await accounts(router, anonymous, alice)
    assert first == again == moved_on and later != first  # the rotation's turn, not the old affinity


async def test_a_stream_taken_with_its_after_work_remembers_its_session_only_when_that_work_runs(router):
    alice = {**CHAT, "user": "alice", "stream": True}
    after = AfterAnswer()
    served = []
    for taker in (after, None, None):
        stream = await router.open_stream(alice, after=taker)
        await stream.aclose()
        served.append(stream.route.account)
        if taker is None and len(served) == 2:
            after.run()  # the first stream's session remembered now, after the second was routed
    assert served[1] != served[0] and served[2] == served[0]


async def test_without_affinity_a_session_rotates_like_any_request(make_router):
    alice = ({**CHAT, "user": "alice"}, CallerHints())
    served = await accounts(make_router(), alice, alice)
    assert served[0] != served[1]


async def test_a_request_that_may_wait_waits_for_the_soonest_account(make_router, upstream, clock):
    router = make_router()
    upstream.on("fast", rate_limited(20), rate_limited(5))
    result = await router.complete(CHAT, caller=CallerHints(max_wait_s=10))
    assert clock.slept == [5]
    assert result.route.attempts == 3 and len(upstream.calls) == 3


async def test_a_wait_longer_than_allowed_is_a_429_at_once(make_router, upstream, clock):
    router = make_router()
    upstream.on("fast", rate_limited(20), rate_limited(15))
    with pytest.raises(ServiceError) as raised:
        await router.complete(CHAT, caller=CallerHints(max_wait_s=10))
    assert (raised.value.code, raised.value.retry_after_s) == ("rate_limit_exceeded", 15)
    assert clock.slept == []


async def test_the_router_caps_what_a_client_may_ask_to_wait(make_router, upstream, clock):
    router = make_router(max_wait_s=3)
    upstream.on("fast", rate_limited(5), rate_limited(5))
    with pytest.raises(ServiceError):
        await router.complete(CHAT, caller=CallerHints(max_wait_s=600))
    assert clock.slept == []


async def test_without_asking_nobody_waits(make_router, upstream, clock):
    upstream.on("fast", rate_limited(1), rate_limited(1))
    with pytest.raises(ServiceError):
        await make_router().complete(CHAT)
    assert clock.slept == []
