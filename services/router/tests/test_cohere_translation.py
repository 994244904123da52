"""OpenAI chat <-> Cohere v2 chat: requests, answers, stream events and errors, translated by pure functions."""

from __future__ import annotations

import pytest

from llmagg_router.adapters.cohere_chat import CohereEvents, classify, completion_of, request_body
from llmagg_router.domain.upstream import Failure, UpstreamError

from .helpers import chat, deltas, fed, user

WEATHER = {"type": "function", "function": {"name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
CALL = {"id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}


def body(*messages, **fields):
    return chat("command-x", *messages, **fields)


# --- requests ------------------------------------------------------------------------------------


def test_messages_map_one_to_one():
    payload = request_body(
        body(
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            user([{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]),
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "get_weather_1", "content": "sunny"},
        )
    )  # fmt: skip
    assert payload["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]},
        {"role": "assistant", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "get_weather_1", "content": "sunny"},
    ]  # fmt: skip


def test_parameters_and_json_modes_map():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    payload = request_body(
        body(user("x"), max_completion_tokens=20, stop="END", top_p=0.5, temperature=0.1, seed=1, stream=True,
             response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
             stream_options={"include_usage": True})
    )  # fmt: skip
    assert payload == {
        "model": "command-x", "messages": [{"role": "user", "content": "x"}], "temperature": 0.1, "p": 0.5, "seed": 1,
        "max_tokens": 20, "stop_sequences": ["END"], "response_format": {"type": "json_object", "json_schema": schema},
        "stream": True,
    }  # fmt: skip
    assert request_body(body(user("x"), response_format={"type": "json_object"}))["response_format"] == {
        "type": "json_object"
    }


def test_tool_choice_maps_and_a_named_function_is_required_with_only_that_tool():
    assert request_body(body(user("x"), tools=[WEATHER, TIME]))["tools"] == [WEATHER, TIME]
    assert "tool_choice" not in request_body(body(user("x"), tools=[WEATHER], tool_choice="auto"))
    assert request_body(body(user("x"), tools=[WEATHER], tool_choice="none"))["tool_choice"] == "NONE"
    assert request_body(body(user("x"), tools=[WEATHER], tool_choice="required"))["tool_choice"] == "REQUIRED"
    named = request_body(
        body(user("x"), tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_time"}})
    )
    assert (named["tools"], named["tool_choice"]) == ([TIME], "REQUIRED")


@pytest.mark.parametrize(
    "request_fields",
    [
        {"n": 2},
        {"tools": [{"type": "file_search"}]},
        {"messages": [user([{"type": "input_audio", "input_audio": {}}])]},
    ],
)
def test_what_cohere_cannot_express_is_unsupported(request_fields):
    with pytest.raises(UpstreamError) as caught:
        request_body({**body(user("x")), **request_fields})
    assert caught.value.failure is Failure.UNSUPPORTED


# --- answers -------------------------------------------------------------------------------------


def answer(message, finish_reason="COMPLETE"):
    usage = {
        "billed_units": {"input_tokens": 9, "output_tokens": 3},
        "tokens": {"input_tokens": 200, "output_tokens": 3},
    }
    return {"id": "c1", "message": {"role": "assistant", **message}, "finish_reason": finish_reason, "usage": usage}


def test_a_text_answer_becomes_a_chat_completion_with_billed_usage():
    completion = completion_of(
        answer({"content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}), "command-x"
    )
    assert completion["id"] == "c1" and completion["model"] == "command-x"
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "Hi there"}
    assert completion["usage"] == {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def test_tool_calls_pass_and_the_tool_plan_is_left_out():
    completion = completion_of(answer({"tool_plan": "I will call it.", "tool_calls": [CALL]}, "TOOL_CALL"), "m")
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": None, "tool_calls": [CALL]}
    assert completion["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("reason", "finish_reason"),
    [("COMPLETE", "stop"), ("STOP_SEQUENCE", "stop"), ("MAX_TOKENS", "length"), ("TOOL_CALL", "tool_calls"),
     ("ERROR_TOXIC", "content_filter")],
)  # fmt: skip
def test_finish_reasons_map(reason, finish_reason):
    assert completion_of(answer({"content": []}, reason), "m")["choices"][0]["finish_reason"] == finish_reason


@pytest.mark.parametrize(("reason", "failure"), [("ERROR", Failure.SERVER), ("TIMEOUT", Failure.TIMEOUT)])
def test_an_answer_that_ended_in_error_is_a_failure(reason, failure):
    with pytest.raises(UpstreamError) as caught:
        completion_of(answer({"content": []}, reason), "m")
    assert caught.value.failure is failure


# --- streams -------------------------------------------------------------------------------------


def translate(events, request=None):
    return fed(CohereEvents(request or body(user("x"))), events)


START = {"id": "s1", "type": "message-start", "delta": {"message": {"role": "assistant"}}}
END = {"type": "message-end", "delta": {"finish_reason": "COMPLETE",
       "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 2}}}}  # fmt: skip


def text(piece):
    return {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}


def test_a_text_stream_becomes_a_role_chunk_deltas_a_finish_chunk_and_usage_when_asked():
    events = [START, {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
              text("Hi"), text(" there"), {"type": "content-end", "index": 0}, END]  # fmt: skip
    chunks = translate(events, body(user("x"), stream_options={"include_usage": True}))
    assert deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None), ({"content": "Hi"}, None), ({"content": " there"}, None),
        ({}, "stop"), {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    ]  # fmt: skip
    assert {c["id"] for c in chunks} == {"s1"} and {c["model"] for c in chunks} == {"command-x"}


def test_tool_call_events_stream_as_tool_call_deltas_and_the_plan_is_left_out():
    events = [
        START,
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will"}}},
        {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
            "id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}}}},
        {"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": '{"city"'}}}}},
        {"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": ':"Oslo"}'}}}}},
        {"type": "tool-call-end", "index": 0},
        {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}},
    ]  # fmt: skip
    assert deltas(translate(events))[1:] == [
        ({"tool_calls": [{"index": 0, "id": "get_weather_1", "type": "function",
                          "function": {"name": "get_weather", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city"'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": ':"Oslo"}'}}]}, None),
        ({}, "tool_calls"),
    ]  # fmt: skip


def test_a_message_end_with_finish_reason_error_raises_an_in_stream_error():
    translator = CohereEvents(body(user("x")))
    list(translator.feed(START))
    list(translator.feed(text("Hi")))
    with pytest.raises(UpstreamError) as caught:
        translator.feed({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "internal server error"}})
    assert caught.value.failure is Failure.SERVER and "internal server error" in caught.value.message


def test_a_stream_without_message_end_is_incomplete():
    with pytest.raises(UpstreamError) as caught:
        translate([START, text("Hi")])
    assert caught.value.failure is Failure.BAD_RESPONSE


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "message", "failure"),
    [
        (429, {"retry-after": "4"}, "You are past the per minute request limit", Failure.RATE_LIMITED),
        (401, {}, "invalid api token", Failure.AUTH),
        (400, {}, "too many tokens: total number of tokens in the prompt cannot exceed 4081", Failure.CONTEXT_LENGTH),
        (400, {}, "invalid request: cannot specify both frequency_penalty and presence_penalty.", Failure.CLIENT),
        (503, {}, "service unavailable", Failure.SERVER),
    ],
)
def test_errors_map_by_status_and_message(status, headers, message, failure):
    error = classify(status, headers, f'{{"id": "e1", "message": "{message}"}}'.encode())
    assert error.failure is failure
    if failure is Failure.RATE_LIMITED:
        assert error.retry_after_s == 4
    if failure is Failure.CLIENT:
        assert error.error["message"] == message
