"""Streamed chat completions: SSE chunks the openai SDK iterates, accumulates and reassembles."""

from __future__ import annotations

import json

from .helpers import HELLO, WEATHER_TOOL, json_headers

ECHO = [{"role": "user", "content": "echo: one two  three"}]


def test_a_stream_with_include_usage_reassembles_and_ends_with_a_usage_chunk(client):
    chunks = list(
        client.chat.completions.create(
            model="sim-small", messages=ECHO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    content = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert content == ["one", " two", " ", " three"]  # one chunk per word, the spaces kept
    assert "".join(content) == "one two  three"
    finishing, usage = chunks[-2], chunks[-1]
    assert finishing.choices[0].finish_reason == "stop" and finishing.choices[0].delta.content is None
    assert all(c.choices[0].finish_reason is None for c in chunks[:-2])
    assert usage.choices == []
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens, usage.usage.total_tokens) == (4, 3, 7)
    assert {(c.id, c.created, c.model, c.object) for c in chunks} == {
        (chunks[0].id, chunks[0].created, "sim-small", "chat.completion.chunk")
    }
    assert chunks[0].id.startswith("chatcmpl-sim-")


def test_a_streamed_words_logprobs_come_with_its_chunk(client, provider):
    chunks = list(client.chat.completions.create(model="sim-small", messages=HELLO, stream=True, logprobs=True))
    tokens = [e.token for c in chunks for ch in c.choices if ch.logprobs for e in ch.logprobs.content or []]
    texts = [ch.delta.content for c in chunks for ch in c.choices if ch.delta.content]
    assert tokens == texts and "".join(tokens) == f"Hello from {provider} (sim-small)."


def test_a_stream_without_include_usage_ends_with_the_finishing_chunk(client, provider):
    chunks = list(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop" and all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == f"Hello from {provider} (m)."


def test_the_wire_has_only_data_lines_and_ends_with_done(sim, provider, raw_http):
    body = json.dumps({"model": "m", "messages": HELLO, "stream": True}).encode()
    response = raw_http("POST", f"{sim.base_url(provider)}/chat/completions", body, json_headers())
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = response.body.decode().split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(event.startswith("data: {") and "\n" not in event for event in events[:-2])


def test_the_sdk_stream_helper_collects_the_final_completion(client):
    with client.chat.completions.stream(model="m", messages=ECHO) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "one two  three"
    assert final.choices[0].message.content == "one two  three" and final.choices[0].finish_reason == "stop"


def test_a_streamed_tool_call_opens_with_id_and_name_then_streams_its_arguments(client):
    chunks = list(client.chat.completions.create(model="m", messages=HELLO, tools=[WEATHER_TOOL], stream=True))
    tool_deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    opening, *pieces = tool_deltas
    assert opening.index == 0 and opening.id.startswith("call_") and opening.type == "function"
    assert opening.function.name == "get_weather" and opening.function.arguments == ""
    assert len(pieces) >= 2 and all(p.id is None and p.function.name is None and p.index == 0 for p in pieces)
    assert json.loads("".join(p.function.arguments for p in pieces)) == {"city": "sim", "unit": "sim"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_the_sdk_stream_helper_accumulates_tool_call_arguments(client):
    with client.chat.completions.stream(model="m", messages=HELLO, tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sim", "unit": "sim"}


async def test_the_async_client_streams_the_same_content(async_client):
    async with async_client:
        stream = await async_client.chat.completions.create(
            model="m", messages=ECHO, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two  three"
    assert chunks[-1].usage.completion_tokens == 3
