"""Streamed Anthropic Messages: named SSE events that the anthropic SDK's stream helpers accumulate."""

from __future__ import annotations

import json

from .helpers import ANTHROPIC_WEATHER_TOOL, API_KEY, json_body, provider_root, sse_events

HELLO = [{"role": "user", "content": "Hello there"}]
ECHO = [{"role": "user", "content": "echo: one two  three"}]


def test_the_wire_has_named_events_in_anthropic_order_each_naming_its_type(sim, provider, raw_http):
    response = raw_http(
        "POST",
        f"{provider_root(sim, provider)}/v1/messages",
        json_body({"model": "m", "max_tokens": 50, "messages": HELLO, "stream": True}),
        {"Content-Type": "application/json", "x-api-key": API_KEY, "anthropic-version": "2023-06-01"},
    )
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.body)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    assert response.headers["request-id"].startswith("req_sim_")


def test_the_stream_helper_yields_the_text_and_accumulates_the_final_message(anthropic_client):
    with anthropic_client.messages.stream(
        model="sim-small", max_tokens=50, system="Be brief.", messages=ECHO
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["one", " two", " ", " three"]
    assert [(b.type, b.text) for b in final.content] == [("text", "one two  three")]
    assert (final.stop_reason, final.stop_sequence, final.model) == ("end_turn", None, "sim-small")
    assert (final.usage.input_tokens, final.usage.output_tokens) == (6, 3)


def test_raw_events_carry_usage_at_the_start_and_the_cumulative_output_tokens_at_the_end(anthropic_client):
    events = list(anthropic_client.messages.create(model="m", max_tokens=50, messages=ECHO, stream=True))
    start, delta = events[0], next(e for e in events if e.type == "message_delta")
    assert (start.message.usage.input_tokens, start.message.usage.output_tokens) == (4, 1)
    assert (delta.delta.stop_reason, delta.usage.output_tokens) == ("end_turn", 3)
    assert {e.message.id for e in events if e.type == "message_start"} == {start.message.id}


def test_a_streamed_max_tokens_ends_with_its_stop_reason(anthropic_client):
    with anthropic_client.messages.stream(model="m", max_tokens=1, messages=ECHO) as stream:
        final = stream.get_final_message()
    assert (final.content[0].text, final.stop_reason, final.usage.output_tokens) == ("one", "max_tokens", 1)


def test_a_streamed_tool_use_opens_empty_then_streams_its_input_as_json(anthropic_client):
    with anthropic_client.messages.stream(
        model="m", max_tokens=50, messages=HELLO, tools=[ANTHROPIC_WEATHER_TOOL]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    opening = next(e for e in events if e.type == "content_block_start")
    assert (opening.content_block.type, opening.content_block.name, opening.content_block.input) == (
        "tool_use",
        "get_weather",
        {},
    )
    partials = [e.delta.partial_json for e in events if e.type == "content_block_delta"]
    assert len(partials) == 2 and json.loads("".join(partials)) == {"city": "sim", "unit": "sim"}
    [block] = final.content
    assert (block.type, block.id, block.input) == ("tool_use", opening.content_block.id, {"city": "sim", "unit": "sim"})
    assert final.stop_reason == "tool_use"


async def test_the_async_stream_helper_accumulates_the_same_message(async_anthropic_client):
    async with async_anthropic_client as api, api.messages.stream(model="m", max_tokens=50, messages=ECHO) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "one two  three" == final.content[0].text
