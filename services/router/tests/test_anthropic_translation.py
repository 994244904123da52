"""OpenAI chat <-> Anthropic Messages: requests, answers, stream events and errors, translated by pure functions."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from llmagg_router.adapters.anthropic_messages import AnthropicEvents, classify, completion_of, request_body
from llmagg_router.domain.upstream import Failure, UpstreamError

from .helpers import chat, deltas, fed, user

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
CALL = {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}


def body(*messages, **fields):
    return chat("claude-x", *messages, **fields)


# --- requests ------------------------------------------------------------------------------------


def test_system_and_developer_messages_become_the_top_level_system_in_order():
    payload, _ = request_body(
        body({"role": "system", "content": "Be brief."}, user("Hi"), {"role": "developer", "content": "No emoji."})
    )
    assert payload["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "No emoji."}]
    assert payload["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]


def test_max_tokens_comes_from_the_request_else_4096_or_the_models_shorter_longest_answer():
    assert request_body(body(user("x"), max_completion_tokens=50, max_tokens=70))[0]["max_tokens"] == 50
    assert request_body(body(user("x"), max_tokens=70))[0]["max_tokens"] == 70
    assert request_body(body(user("x")))[0]["max_tokens"] == 4096
    assert request_body(body(user("x")), max_output_tokens=64000)[0]["max_tokens"] == 4096
    assert request_body(body(user("x")), max_output_tokens=1024)[0]["max_tokens"] == 1024
    assert request_body(body(user("x"), max_tokens=2048), max_output_tokens=1024)[0]["max_tokens"] == 2048
    # A whole number written with a point is a valid OpenAI max_tokens: it is sent as the integer it is.
    assert request_body(body(user("x"), max_tokens=70.0))[0]["max_tokens"] == 70
    assert type(request_body(body(user("x"), max_tokens=70.0))[0]["max_tokens"]) is int


def test_sampling_stop_user_and_stream_fields_map_and_the_rest_is_left_out():
    payload, _ = request_body(
        body(user("x"), temperature=0.2, top_p=0.9, stop="END", user="u-1", stream=True,
             stream_options={"include_usage": True}, seed=3, frequency_penalty=0.5, logprobs=True)
    )  # fmt: skip
    assert payload == {
        "model": "claude-x", "max_tokens": 4096, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
        "temperature": 0.2, "top_p": 0.9, "stop_sequences": ["END"], "metadata": {"user_id": "u-1"}, "stream": True,
    }  # fmt: skip


def test_images_become_base64_or_url_sources_and_pdfs_document_blocks():
    payload, _ = request_body(
        body(user([
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"}},
        ]))
    )  # fmt: skip
    assert payload["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
    ]


def test_tool_calls_become_tool_use_blocks_and_consecutive_tool_results_one_user_message():
    second = {**CALL, "id": "toolu_2", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}
    payload, _ = request_body(
        body(
            user("Weather in Oslo and Rome?"),
            {"role": "assistant", "content": "Checking.", "tool_calls": [CALL, second]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "rain"}]},
            user("Thanks"),
        )
    )
    assert payload["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "rain"}]},
            {"type": "text", "text": "Thanks"},
        ]},
    ]  # fmt: skip


def test_function_tools_and_each_tool_choice_map():
    payload, _ = request_body(body(user("x"), tools=[WEATHER]))
    assert payload["tools"] == [{"description": "Weather now", "name": "get_weather",
                                 "input_schema": WEATHER["function"]["parameters"]}]  # fmt: skip
    assert "tool_choice" not in payload
    for choice, expected in [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ]:
        assert request_body(body(user("x"), tools=[WEATHER], tool_choice=choice))[0]["tool_choice"] == expected
    no_parallel = request_body(body(user("x"), tools=[WEATHER], parallel_tool_calls=False))[0]
    assert no_parallel["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "tool_choice" not in request_body(body(user("x"), tool_choice="auto"))[0]  # no tools, no choice


def test_a_json_schema_response_format_is_asked_for_as_a_forced_tool():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    payload, json_tool = request_body(
        body(user("x"), response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": schema}})
    )
    assert json_tool == "json_answer"
    assert payload["tools"] == [
        {"name": "json_answer", "description": "Give your final answer as this tool's input.", "input_schema": schema}
    ]
    assert payload["tool_choice"] == {"type": "tool", "name": "json_answer"}


def test_json_object_mode_forces_a_tool_taking_any_object_and_keeps_the_users_tools_callable():
    payload, json_tool = request_body(body(user("x"), tools=[WEATHER], response_format={"type": "json_object"}))
    assert json_tool == "json_answer"
    assert [t["name"] for t in payload["tools"]] == ["get_weather", "json_answer"]
    assert payload["tools"][1]["input_schema"] == {"type": "object"}
    assert payload["tool_choice"] == {"type": "any"}  # a tool of the user's, or the answer
    clash = {**WEATHER, "function": {**WEATHER["function"], "name": "json_answer"}}
    assert request_body(body(user("x"), tools=[clash], response_format={"type": "json_object"}))[1] == "json_answer_"


@pytest.mark.parametrize(
    "request_fields",
    [
        {"n": 2},
        {"tools": [{"type": "web_search"}]},
        {"messages": [user([{"type": "input_audio", "input_audio": {"data": "AAA=", "format": "wav"}}])]},
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "array"}}}},
    ],
)
def test_what_anthropic_cannot_express_is_unsupported_so_the_next_candidate_is_tried(request_fields):
    with pytest.raises(UpstreamError) as caught:
        request_body({**body(user("x")), **request_fields})
    assert caught.value.failure is Failure.UNSUPPORTED


def test_tool_call_arguments_that_are_not_json_are_the_clients_error():
    broken = {**CALL, "function": {"name": "get_weather", "arguments": "{city"}}
    with pytest.raises(UpstreamError) as caught:
        request_body(body(user("x"), {"role": "assistant", "tool_calls": [broken]}))
    assert caught.value.failure is Failure.CLIENT and caught.value.error["param"] == "messages"


# --- answers -------------------------------------------------------------------------------------


def message(*content, stop_reason="end_turn", **usage):
    counts = {"input_tokens": 10, "output_tokens": 4, **usage}
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": list(content),
            "stop_reason": stop_reason, "usage": counts}  # fmt: skip


def test_a_text_answer_becomes_a_chat_completion_with_openai_usage():
    answer = completion_of(
        message({"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"},
                cache_read_input_tokens=5, cache_creation_input_tokens=2), None
    )  # fmt: skip
    assert answer["id"] == "msg_1" and answer["object"] == "chat.completion" and answer["model"] == "claude-x"
    assert answer["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "logprobs": None, "finish_reason": "stop"}
    ]
    assert answer["usage"] == {"prompt_tokens": 17, "completion_tokens": 4, "total_tokens": 21,
                               "prompt_tokens_details": {"cached_tokens": 5}}  # fmt: skip


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
     ("refusal", "content_filter"), ("pause_turn", "stop")],
)  # fmt: skip
def test_stop_reasons_map_to_finish_reasons(stop_reason, finish_reason):
    content = {"type": "tool_use", "id": "t", "name": "f", "input": {}}
    answer = completion_of(message(content, stop_reason=stop_reason), None)
    assert answer["choices"][0]["finish_reason"] == finish_reason


def test_tool_use_blocks_become_tool_calls_and_the_json_answer_tool_becomes_the_content():
    use = {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}}
    called = completion_of(message(use, stop_reason="tool_use"), None)["choices"][0]
    assert called["message"] == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "toolu_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}],
    }  # fmt: skip
    answered = completion_of(message({**use, "name": "json_answer"}, stop_reason="tool_use"), "json_answer")
    assert answered["choices"][0]["message"] == {"role": "assistant", "content": '{"city":"Oslo"}'}
    assert answered["choices"][0]["finish_reason"] == "stop"


# --- streams -------------------------------------------------------------------------------------


START = {
    "type": "message_start",
    "message": {"id": "msg_2", "model": "claude-x", "usage": {"input_tokens": 7, "output_tokens": 1}},
}
TEXT_BLOCK = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}


def text_delta(text, index=0):
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}


def finish(stop_reason, output_tokens):
    return {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": output_tokens}}


def translate(events, request=None, json_tool=None):
    return fed(AnthropicEvents(request or body(user("x")), json_tool), events)


def test_a_text_stream_is_a_role_chunk_deltas_a_finish_chunk_and_usage_when_asked():
    stream = [START, TEXT_BLOCK, {"type": "ping"}, text_delta("Hel"), text_delta("lo"),
              {"type": "content_block_stop", "index": 0}, finish("end_turn", 2), {"type": "message_stop"}]  # fmt: skip
    chunks = translate(stream, body(user("x"), stream=True, stream_options={"include_usage": True}))
    assert deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None), ({"content": "Hel"}, None), ({"content": "lo"}, None),
        ({}, "stop"), {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    ]  # fmt: skip
    assert {c["id"] for c in chunks} == {"msg_2"} and {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len(translate(stream)) == 4  # no usage chunk unless the request asks for one


def test_tool_use_blocks_stream_as_tool_call_deltas_with_their_own_index():
    stream = [
        START, TEXT_BLOCK, text_delta("Let me check."),
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ' "Oslo"}'}},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        finish("tool_use", 30),
    ]  # fmt: skip
    assert deltas(translate(stream))[2:] == [
        ({"tool_calls": [{"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": ' "Oslo"}'}}]}, None),
        ({"tool_calls": [{"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, None),
        ({}, "tool_calls"),
    ]  # fmt: skip


def test_the_json_answer_tool_streams_as_content_and_thinking_is_left_out():
    stream = [
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "json_answer", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a": 1}'}},
        finish("tool_use", 5),
    ]  # fmt: skip
    assert deltas(translate(stream, json_tool="json_answer"))[1:] == [({"content": '{"a": 1}'}, None), ({}, "stop")]


@pytest.mark.parametrize(
    ("error_type", "failure"),
    [("overloaded_error", Failure.SERVER), ("rate_limit_error", Failure.RATE_LIMITED), ("api_error", Failure.SERVER)],
)
def test_an_error_event_in_the_stream_raises_its_failure(error_type, failure):
    translator = AnthropicEvents(body(user("x")), None)
    list(translator.feed(START))
    with pytest.raises(UpstreamError) as caught:
        translator.feed({"type": "error", "error": {"type": error_type, "message": "Overloaded"}})
    assert caught.value.failure is failure and error_type in caught.value.message


def test_a_stream_that_ends_before_message_delta_is_incomplete():
    with pytest.raises(UpstreamError) as caught:
        translate([START, TEXT_BLOCK, text_delta("Hel")])
    assert caught.value.failure is Failure.BAD_RESPONSE


# --- errors --------------------------------------------------------------------------------------


def anthropic_error(error_type, text):
    return json.dumps({"type": "error", "error": {"type": error_type, "message": text}, "request_id": "req_1"}).encode()


def test_a_429_waits_for_retry_after_else_for_the_reset_of_the_exhausted_limit():
    raw = anthropic_error("rate_limit_error", "This request would exceed the rate limit")
    assert classify(429, {"retry-after": "12"}, raw).retry_after_s == 12
    reset = (datetime.now(UTC) + timedelta(seconds=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {"anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": reset,
               "anthropic-ratelimit-tokens-remaining": "900", "anthropic-ratelimit-tokens-reset": "2000-01-01T00:00:00Z"}  # fmt: skip
    error = classify(429, headers, raw)
    assert error.failure is Failure.RATE_LIMITED and 38 <= error.retry_after_s <= 40


def test_529_overloaded_falls_over_as_a_server_failure_not_a_cooldown():
    error = classify(529, {}, anthropic_error("overloaded_error", "Overloaded"))
    assert error.failure is Failure.SERVER and error.retry_after_s is None and "overloaded" in error.message


@pytest.mark.parametrize(
    ("status", "error_type", "text", "failure"),
    [
        (401, "authentication_error", "invalid x-api-key", Failure.AUTH),
        (403, "permission_error", "no access", Failure.AUTH),
        (400, "invalid_request_error", "prompt is too long: 209541 tokens > 200000 maximum", Failure.CONTEXT_LENGTH),
        (404, "not_found_error", "model: claude-x", Failure.NOT_FOUND),
        (500, "api_error", "Internal server error", Failure.SERVER),
    ],
)
def test_error_types_map_to_failures(status, error_type, text, failure):
    assert classify(status, {}, anthropic_error(error_type, text)).failure is failure


def test_a_bad_request_keeps_anthropics_message_and_type_for_the_client():
    error = classify(400, {}, anthropic_error("invalid_request_error", "temperature: range: 0..1"))
    assert error.failure is Failure.CLIENT
    assert error.error["message"] == "temperature: range: 0..1" and error.error["type"] == "invalid_request_error"


def test_reset_times_in_the_past_do_not_make_a_negative_wait():
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    headers = {"anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": past}
    assert classify(429, headers, anthropic_error("rate_limit_error", "slow down")).retry_after_s == 0
