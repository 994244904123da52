"""Cohere v2 chat (`/<name>/v2/chat`) as the official cohere SDK sees it, whole and streamed."""

from __future__ import annotations

import json

import pytest

from .helpers import API_KEY, TIME_TOOL, WEATHER_TOOL, json_body, json_headers, provider_root, sse_events

pytestmark = pytest.mark.filterwarnings("ignore:The `__fields__` attribute is deprecated")
HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
ECHO = [{"role": "user", "content": "echo: one two  three"}]


def test_a_chat_says_hello_with_complete_and_billed_usage(cohere_client, provider):
    response = cohere_client.chat(model="sim-small", messages=HELLO)
    assert [(item.type, item.text) for item in response.message.content] == [
        ("text", f"Hello from {provider} (sim-small).")
    ]
    assert (response.message.role, response.finish_reason, response.message.tool_calls) == (
        "assistant",
        "COMPLETE",
        None,
    )
    billed, tokens = response.usage.billed_units, response.usage.tokens
    assert (billed.input_tokens, billed.output_tokens, tokens.input_tokens, tokens.output_tokens) == (4, 4, 4, 4)
    assert len(response.id) == 36


async def test_the_async_client_echoes_the_last_user_message(async_cohere_client):
    response = await async_cohere_client.chat(
        model="sim-large",
        messages=[
            {"role": "user", "content": "echo: first"},
            {"role": "assistant", "content": "first"},
            {"role": "user", "content": [{"type": "text", "text": "echo: two  spaces"}]},
        ],
    )
    assert response.message.content[0].text == "two  spaces" and response.usage.billed_units.output_tokens == 2


@pytest.mark.parametrize(
    ("options", "text", "finish_reason"),
    [
        ({"max_tokens": 2}, "one two", "MAX_TOKENS"),
        ({"stop_sequences": ["STOP"]}, "one two ", "STOP_SEQUENCE"),
    ],
)
def test_limits_cut_the_reply_and_say_why(cohere_client, options, text, finish_reason):
    response = cohere_client.chat(
        model="m", messages=[{"role": "user", "content": "echo: one two STOP three"}], **options
    )
    assert (response.message.content[0].text, response.finish_reason) == (text, finish_reason)


def test_offered_tools_get_a_tool_plan_and_one_call_of_the_first(cohere_client):
    response = cohere_client.chat(model="m", messages=HELLO, tools=[WEATHER_TOOL, TIME_TOOL])
    [call] = response.message.tool_calls
    assert (call.type, call.function.name) == ("function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "sim", "unit": "sim"}
    assert call.id.startswith("get_weather_")
    assert (response.finish_reason, response.message.tool_plan) == ("TOOL_CALL", "I will use the get_weather tool.")
    assert response.message.content is None


def test_tool_choice_none_answers_in_text_and_required_calls(cohere_client):
    none = cohere_client.chat(model="m", messages=HELLO, tools=[WEATHER_TOOL], tool_choice="NONE")
    assert (none.finish_reason, none.message.tool_calls) == ("COMPLETE", None)
    required = cohere_client.chat(model="m", messages=HELLO, tools=[WEATHER_TOOL], tool_choice="REQUIRED")
    assert required.message.tool_calls[0].function.name == "get_weather"


def test_the_request_log_shows_what_the_sdk_sent(sim, cohere_client, provider):
    cohere_client.chat(model="sim-small", messages=HELLO, max_tokens=9)
    [logged] = sim.requests(provider)
    assert (logged["method"], logged["path"], logged["query"]) == ("POST", f"/{provider}/v2/chat", {})
    assert logged["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert logged["body"] == {"model": "sim-small", "messages": HELLO, "max_tokens": 9, "stream": False}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "m", "messages": HELLO}, 401, "no api key supplied"),
        ({"messages": HELLO}, 400, "invalid request: model must be specified."),
        ({"model": "m", "messages": []}, 400, "invalid request: messages must not be empty."),
        (
            {"model": "m", "messages": HELLO, "tool_choice": "AUTO"},
            400,
            "invalid request: tool_choice must be one of REQUIRED, NONE.",
        ),
    ],
)
def test_refused_requests_answer_with_a_message(sim, provider, raw_http, body, status, message):
    headers = json_headers(None if status == 401 else API_KEY)
    response = raw_http("POST", f"{provider_root(sim, provider)}/v2/chat", json_body(body), headers)
    assert response.status == status
    assert response.json()["message"] == message and set(response.json()) == {"id", "message"}


def test_the_stream_wire_names_each_event_after_its_type_and_ends_after_message_end(sim, provider, raw_http):
    response = raw_http(
        "POST",
        f"{provider_root(sim, provider)}/v2/chat",
        json_body({"model": "m", "messages": ECHO, "stream": True}),
        json_headers(),
    )
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.body)
    assert [name for name, _ in events] == [
        "message-start",
        "content-start",
        *["content-delta"] * 4,
        "content-end",
        "message-end",
    ]
    assert all(data["type"] == name for name, data in events)


def test_the_sdk_stream_carries_the_text_then_the_finish_reason_and_usage(cohere_client):
    events = list(cohere_client.chat_stream(model="m", messages=ECHO))
    assert events[0].type == "message-start" and events[0].delta.message.role == "assistant"
    text = [e.delta.message.content.text for e in events if e.type == "content-delta"]
    assert text == ["one", " two", " ", " three"]
    end = events[-1]
    assert (end.type, end.delta.finish_reason) == ("message-end", "COMPLETE")
    assert (end.delta.usage.billed_units.input_tokens, end.delta.usage.billed_units.output_tokens) == (4, 3)


def test_a_streamed_tool_call_streams_its_plan_then_opens_and_streams_its_arguments(cohere_client):
    events = list(cohere_client.chat_stream(model="m", messages=HELLO, tools=[WEATHER_TOOL]))
    types = [e.type for e in events]
    assert types[0] == "message-start" and types[-2:] == ["tool-call-end", "message-end"]
    plan = "".join(e.delta.message.tool_plan for e in events if e.type == "tool-plan-delta")
    assert plan == "I will use the get_weather tool."
    [start] = [e for e in events if e.type == "tool-call-start"]
    opened = start.delta.message.tool_calls
    assert (opened.function.name, opened.function.arguments) == ("get_weather", "")
    pieces = [e.delta.message.tool_calls.function.arguments for e in events if e.type == "tool-call-delta"]
    assert len(pieces) == 2 and json.loads("".join(pieces)) == {"city": "sim", "unit": "sim"}
    assert events[-1].delta.finish_reason == "TOOL_CALL"


async def test_the_async_client_streams_the_same_text(async_cohere_client):
    events = [event async for event in async_cohere_client.chat_stream(model="m", messages=ECHO)]
    assert "".join(e.delta.message.content.text for e in events if e.type == "content-delta") == "one two  three"
