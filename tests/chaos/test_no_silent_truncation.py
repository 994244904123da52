"""Promise 1: a response is complete, or it ends with an explicit error; never a silent truncated 200."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import openai
import pytest

from llmagg_devstack import SimulatorProcess

from ..helpers import wait_for
from .helpers import is_complete_completion, openai_error, provider, start_stack

WORDS = " ".join(f"w{i}" for i in range(400))  # 400 chunks at 50 ms: a 20 s stream


@pytest.fixture(scope="module")
def slow_simulator():
    with SimulatorProcess({"slow-first": {"type": "slow_first_byte", "delay_s": 0.3}}, chunk_delay_ms=50) as sim:
        yield sim


@pytest.fixture
def stack(tmp_path, slow_simulator, hostile, make_stack):
    providers = [
        provider("cut-two", hostile.base_url("cut-two"), "cut-two"),
        provider("long", slow_simulator.base_url("long"), "long-stream"),
        provider("slow-first", slow_simulator.base_url("slow-first"), "slow-answer"),
    ]
    stack = start_stack(make_stack, tmp_path, providers, env={"ROUTER_DRAIN_S": "0"})
    yield stack
    stack.stop()


def router_of(stack):
    [router] = [p for p in stack.processes if p.name == "router"]
    return router


def test_every_byte_an_upstream_sent_before_a_cut_reaches_the_client_before_the_error(stack):
    client = openai.OpenAI(base_url=stack.base_url, api_key="x", max_retries=0)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(
            model="cut-two", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            received.append(chunk.choices[0].delta.content)
    assert received == ["Hello", " from"]
    assert caught.value.code == "upstream_stream_interrupted"


def test_a_stream_still_running_when_the_router_stops_ends_with_an_explicit_error(stack):
    client = openai.OpenAI(base_url=stack.base_url, api_key="x", max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model="long-stream", messages=[{"role": "user", "content": f"echo: {WORDS}"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
            if len(received) == 5:
                router_of(stack).process.send_signal(signal.SIGTERM)
    assert caught.value.code == "server_shutting_down"
    text = "".join(received)
    assert 5 <= len(received) < 400 and WORDS.startswith(text.strip())
    assert router_of(stack).process.wait(15) == 0


async def test_requests_around_a_router_stop_get_a_whole_answer_or_an_openai_503(stack, slow_simulator):
    """64 requests in flight when SIGTERM arrives and 32 more during the drain and after the stop."""
    url = f"{stack.base_url}/chat/completions"
    body = {"model": "slow-answer", "messages": [{"role": "user", "content": "hi"}]}

    async def send(session: aiohttp.ClientSession) -> tuple[int, dict, bytes]:
        async with session.post(url, json=body) as response:
            return response.status, dict(response.headers), await response.read()

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        first = [asyncio.create_task(send(session)) for _ in range(64)]
        await asyncio.to_thread(
            wait_for, lambda: slow_simulator.state("slow-first")["in_flight"] >= 32, "32 requests in flight"
        )
        router_of(stack).process.send_signal(signal.SIGTERM)
        later = []
        for _ in range(32):
            later.append(asyncio.create_task(send(session)))
            await asyncio.sleep(0.05)  # spread over the drain and the stop: the timing varies, the answers may not
        results = await asyncio.gather(*first, *later)
    served = 0
    for status, headers, payload in results:
        if is_complete_completion(status, payload):
            served += 1
            continue
        assert status == 503, (status, payload)
        assert headers.get("Retry-After") == "1", headers
        openai_error(payload)
    assert served >= 32  # every request the router had started was finished
