"""Faults that break the answer itself: cut streams, malformed JSON, slow first bytes, hangs."""

from __future__ import annotations

import json
import time

import openai
import pytest

from .helpers import HELLO, collect, json_headers, sdk_for, wait_until_idle

ECHO_FIVE = [{"role": "user", "content": "echo: one two three four five"}]


def test_a_cut_stream_makes_sdk_iteration_raise_after_the_role_chunk_and_n_more(sim, client, provider):
    sim.script(provider, [{"type": "cut_stream", "after_chunks": 2}])
    received, error = collect(client.chat.completions.create(model="m", messages=ECHO_FIVE, stream=True))
    assert isinstance(error, openai.APIConnectionError)
    assert [c.choices[0].delta.content for c in received] == ["", "one", " two"]


def test_a_cut_stream_never_delivers_the_finishing_chunk_however_late_the_cut(sim, client, provider):
    sim.script(provider, [{"type": "cut_stream", "after_chunks": 50}])
    received, error = collect(
        client.chat.completions.create(
            model="m", messages=ECHO_FIVE, stream=True, stream_options={"include_usage": True}
        )
    )
    assert isinstance(error, openai.APIConnectionError)
    assert "".join(c.choices[0].delta.content for c in received) == "one two three four five"
    assert all(c.choices and c.choices[0].finish_reason is None for c in received)


def test_a_cut_after_zero_chunks_delivers_only_the_role_chunk(sim, client, provider):
    sim.script(provider, [{"type": "cut_stream", "after_chunks": 0}])
    received, error = collect(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    assert isinstance(error, openai.APIConnectionError)
    assert len(received) == 1 and received[0].choices[0].delta.role == "assistant"


def test_a_cut_stream_fault_truncates_a_non_streamed_answer(sim, client, provider):
    sim.script(provider, [{"type": "cut_stream", "count": 2}])
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=HELLO)
    with pytest.raises(openai.APIConnectionError):
        client.embeddings.create(model="sim-embed", input="x")


def test_malformed_json_is_a_200_json_answer_that_does_not_parse(sim, provider, raw_http):
    sim.script(provider, ["malformed_json"])
    body = json.dumps({"model": "m", "messages": HELLO}).encode()
    response = raw_http("POST", f"{sim.base_url(provider)}/chat/completions", body, json_headers())
    assert response.status == 200 and response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_malformed_json_makes_the_sdk_raise(sim, client, provider):
    sim.script(provider, ["malformed_json"])
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="m", messages=HELLO)


def test_a_malformed_chunk_makes_sdk_stream_iteration_raise(sim, client, provider):
    sim.script(provider, ["malformed_json"])
    received, error = collect(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    assert isinstance(error, json.JSONDecodeError)
    assert len(received) == 1  # the role chunk parsed; the next data line did not


def test_slow_first_byte_delays_the_answer_then_answers_normally(sim, client, provider):
    sim.script(provider, [{"type": "slow_first_byte", "delay_s": 0.3}])
    started = time.monotonic()
    completion = client.chat.completions.create(model="m", messages=HELLO)
    assert time.monotonic() - started >= 0.3
    assert completion.choices[0].message.content == f"Hello from {provider} (m)."


def test_a_hang_trips_the_client_timeout_and_ends_when_the_client_disconnects(sim, provider):
    sim.script(provider, ["hang"])
    with sdk_for(sim, provider, timeout=0.3) as api, pytest.raises(openai.APITimeoutError):
        api.chat.completions.create(model="m", messages=HELLO)
    assert wait_until_idle(sim, provider) == 0  # not still sleeping out its 600 s


def test_a_slow_first_byte_trips_a_shorter_client_timeout_and_ends_when_it_leaves(sim, provider):
    sim.script(provider, [{"type": "slow_first_byte", "delay_s": 30}])
    with sdk_for(sim, provider, timeout=0.3) as api, pytest.raises(openai.APITimeoutError):
        api.chat.completions.create(model="m", messages=HELLO, stream=True)
    assert wait_until_idle(sim, provider) == 0


def test_a_hang_closes_the_connection_unanswered_after_max_hang_s(sim, client, provider):
    sim.script(provider, [{"type": "hang", "max_hang_s": 0.2}])
    started = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as caught:
        client.chat.completions.create(model="m", messages=HELLO)
    assert not isinstance(caught.value, openai.APITimeoutError)  # the server gave up, not the client
    assert 0.2 <= time.monotonic() - started < 5
