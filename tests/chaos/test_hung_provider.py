"""Promise 2: a hung provider costs one first-byte timeout, once; then its circuit opens and one probe
at a time tests it again. A dead host takes every model behind it out of `auto` at once."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from llmagg_devstack import SimulatorProcess, free_port

from ..helpers import wait_for
from .helpers import provider, start_stack

FIRST_BYTE_S = 1.0
OPEN_S = 3.0
ROUTER_ENV = {
    "ROUTER_FIRST_BYTE_TIMEOUT_S": str(FIRST_BYTE_S),
    "ROUTER_CIRCUIT_FAILURE_THRESHOLD": "3",
    "ROUTER_CIRCUIT_OPEN_S": str(OPEN_S),
    "ROUTER_READ_TIMEOUT_S": "30",
    "ROUTER_META_CONTROLLER": "false",  # `auto` in the static order: the attempts per request are exact
}
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def simulator():
    with SimulatorProcess({"hung": "hang", "hung-ns": "hang"}) as sim:
        yield sim


def with_embeddings(entry: dict) -> dict:
    return {**entry, "models": [*entry["models"], {"id": "e", "type": "embedding", "aliases": ["hung-embed"]}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, simulator, make_stack):
    providers = [
        provider("hung", simulator.base_url("hung"), "hung-alias", speed=5),
        provider("healthy", simulator.base_url("healthy"), "hung-alias", speed=3),
        with_embeddings(provider("hung-ns", simulator.base_url("hung-ns"), "hung-ns-alias", speed=5)),
        with_embeddings(provider("healthy-ns", simulator.base_url("healthy-ns"), "hung-ns-alias", speed=3)),
    ]
    stack = start_stack(make_stack, tmp_path_factory.mktemp("hung"), providers, env=ROUTER_ENV)
    yield stack
    stack.stop()


async def stream_wave(stack, count: int) -> list[tuple[str, str]]:
    """`count` concurrent streams; each one's (provider, attempts), once it completed."""
    client = openai.AsyncOpenAI(base_url=stack.base_url, api_key="x", max_retries=0, timeout=60)

    async def one() -> tuple[str, str]:
        raw = await client.chat.completions.with_raw_response.create(model="hung-alias", messages=HELLO, stream=True)
        chunks = [chunk async for chunk in raw.parse()]
        assert chunks[-1].choices[0].finish_reason == "stop"
        return raw.headers["x-llmagg-provider"], raw.headers["x-llmagg-attempts"]

    try:
        return await asyncio.gather(*(one() for _ in range(count)))
    finally:
        await client.close()


async def test_a_hung_provider_costs_a_first_byte_timeout_until_its_circuit_opens_then_one_probe(stack, simulator):
    first = await stream_wave(stack, 8)
    first_done = time.monotonic()
    hung_calls = len(simulator.requests("hung"))
    # Each stream that met the hung provider first fell over after its first-byte timeout; at most the
    # requests that started before its circuit opened met it at all.
    assert {served for served, _ in first} == {"healthy"}
    assert hung_calls == sum(1 for _, attempts in first if attempts == "2") >= 3
    # The circuit is open: the next wave goes straight to the healthy provider.
    second = await stream_wave(stack, 8)
    assert second == [("healthy", "1")] * 8
    assert len(simulator.requests("hung")) == hung_calls
    # Once the open window has passed, exactly one of many concurrent requests probes the hung provider.
    await asyncio.to_thread(wait_for, lambda: time.monotonic() > first_done + OPEN_S + 0.2, "the open window to pass")
    third = await stream_wave(stack, 8)
    assert len(simulator.requests("hung")) == hung_calls + 1
    assert sorted(third) == [("healthy", "1")] * 7 + [("healthy", "2")]


def test_a_non_stream_answer_is_read_as_a_stream_so_a_hung_provider_costs_the_first_byte_timeout(stack, simulator):
    client = openai.OpenAI(base_url=stack.base_url, api_key="x", max_retries=0, timeout=FIRST_BYTE_S + 5)
    raw = client.chat.completions.with_raw_response.create(model="hung-ns-alias", messages=HELLO)
    assert (raw.headers["x-llmagg-provider"], raw.headers["x-llmagg-attempts"]) == ("healthy-ns", "2")
    assert raw.parse().choices[0].message.content == "Hello from healthy-ns (m)."


def test_attempts_the_client_abandons_after_the_first_byte_timeout_open_the_circuit(stack, simulator):
    """Embeddings come back whole: only the read timeout bounds them, so it is the client that gives up."""
    impatient = openai.OpenAI(base_url=stack.base_url, api_key="x", max_retries=0, timeout=FIRST_BYTE_S + 1.5)
    before = len(simulator.requests("hung-ns"))
    for _ in range(3):
        with pytest.raises(openai.APITimeoutError):
            impatient.embeddings.create(model="hung-embed", input="x")
    wait_for(lambda: simulator.state("hung-ns")["in_flight"] == 0, "the abandoned requests to end")
    assert len(simulator.requests("hung-ns")) == before + 3
    patient = openai.OpenAI(base_url=stack.base_url, api_key="x", max_retries=0, timeout=30)
    raw = patient.embeddings.with_raw_response.create(model="hung-embed", input="x")
    assert (raw.headers["x-llmagg-provider"], raw.headers["x-llmagg-attempts"]) == ("healthy-ns", "1")
    assert len(simulator.requests("hung-ns")) == before + 3


@pytest.fixture(scope="module")
def auto_stack(tmp_path_factory, simulator, make_stack):
    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]

    def dead_provider(provider_id: str, base_url: str) -> dict:
        models = [{"id": f"big-{i}", "quality": 5, "context_window": 32768} for i in range(3)]
        return {"id": provider_id, "base_url": base_url, "speed": 5, "models": models}

    providers = [
        dead_provider("dead-a", dead[0]),
        dead_provider("dead-b", dead[1]),
        {"id": "live", "base_url": simulator.base_url("live"), "speed": 1, "models": [{"id": "small", "quality": 1}]},
    ]
    stack = start_stack(make_stack, tmp_path_factory.mktemp("auto"), providers, env=ROUTER_ENV)
    yield stack
    stack.stop()


def test_auto_reaches_a_working_provider_when_two_hosts_are_down(auto_stack):
    client = openai.OpenAI(base_url=auto_stack.base_url, api_key="x", max_retries=0, timeout=30)
    attempts = []
    for _ in range(11):
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
        assert raw.headers["x-llmagg-provider"] == "live"
        attempts.append(int(raw.headers["x-llmagg-attempts"]))
    # One attempt per dead host, never one per model behind it; once their circuits open, none.
    assert attempts[:3] == [3, 3, 3] and attempts[3:] == [1] * 8
