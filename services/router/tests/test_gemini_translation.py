"""OpenAI chat <-> Gemini generateContent: requests, answers, stream chunks and errors, translated by pure functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from llmagg_router.adapters.gemini_generate import (
    GeminiEvents,
    classify,
    completion_of,
    model_path,
    request_body,
)
from llmagg_router.adapters.upstream_errors import seconds_to_quota_day_end
from llmagg_router.domain.upstream import Failure, UpstreamError

from .helpers import chat, deltas, fed, user

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip


def body(*messages, **fields):
    return chat("gemini-x", *messages, **fields)


def calling(*calls):
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        for call_id, name, args in calls
    ]}  # fmt: skip


def tool(call_id, content, **extra):
    return {"role": "tool", "tool_call_id": call_id, "content": content, **extra}


# --- requests ------------------------------------------------------------------------------------


def test_roles_become_user_and_model_turns_and_system_messages_the_system_instruction():
    payload = request_body(
        body(
            {"role": "system", "content": "Be brief."},
            user("Hi"),
            {"role": "assistant", "content": "Hello!"},
            user("Bye"),
        )
    )
    assert payload == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}, {"role": "model", "parts": [{"text": "Hello!"}]},
                     {"role": "user", "parts": [{"text": "Bye"}]}],
    }  # fmt: skip
    assert "model" not in payload  # the model travels in the URL; Google refuses unknown fields


def test_generation_config_holds_sampling_limits_stops_and_json_modes():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    payload = request_body(
        body(user("x"), temperature=0.3, top_p=0.8, max_tokens=64, stop=["END", "STOP"], seed=7, presence_penalty=0.1,
             response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}})
    )  # fmt: skip
    assert payload["generationConfig"] == {
        "temperature": 0.3, "topP": 0.8, "seed": 7, "presencePenalty": 0.1, "maxOutputTokens": 64,
        "stopSequences": ["END", "STOP"], "responseMimeType": "application/json", "responseJsonSchema": schema,
    }  # fmt: skip
    json_object = request_body(body(user("x"), response_format={"type": "json_object"}))["generationConfig"]
    assert json_object == {"responseMimeType": "application/json"}


def test_images_audio_and_files_become_inline_or_file_data():
    payload = request_body(body(user([
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a/cat.png?size=2"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x"}},
    ])))  # fmt: skip
    assert payload["contents"][0]["parts"] == [
        {"text": "Look"},
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a/cat.png?size=2"}},
        {"inlineData": {"mimeType": "audio/mp3", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
    ]


def test_tools_become_function_declarations_and_each_tool_choice_a_calling_mode():
    payload = request_body(body(user("x"), tools=[WEATHER]))
    assert payload["tools"] == [{"functionDeclarations": [{"name": "get_weather", "description": "Weather now",
                                                          "parametersJsonSchema": WEATHER["function"]["parameters"]}]}]  # fmt: skip
    assert "toolConfig" not in payload
    for choice, expected in [
        ("none", {"mode": "NONE"}),
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ]:  # fmt: skip
        config = request_body(body(user("x"), tools=[WEATHER], tool_choice=choice))["toolConfig"]
        assert config == {"functionCallingConfig": expected}


def test_tool_results_find_their_function_by_call_id_and_merge_into_one_user_turn():
    payload = request_body(
        body(
            user("Weather and time?"),
            calling(("c1", "get_weather", {"city": "Oslo"}), ("c2", "get_time", {})),
            tool("c2", '{"time": "12:00"}'),
            tool("c1", "sunny"),
        )
    )
    assert payload["contents"][1:] == [
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                                    {"functionCall": {"name": "get_time", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_time", "response": {"time": "12:00"}}},
                                   {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]},
    ]  # fmt: skip


def test_a_tool_result_with_an_unknown_id_is_matched_by_position_then_by_name_else_refused():
    by_position = request_body(body(user("x"), calling(("c1", "get_weather", {})), tool("other-id", "ok")))
    assert by_position["contents"][2]["parts"][0]["functionResponse"]["name"] == "get_weather"
    by_name = request_body(body(user("x"), tool("lost", "ok", name="legacy_fn")))
    assert by_name["contents"][0]["parts"][1]["functionResponse"]["name"] == "legacy_fn"
    with pytest.raises(UpstreamError) as caught:
        request_body(body(user("x"), tool("lost", "ok")))
    assert caught.value.failure is Failure.CLIENT and "lost" in caught.value.message


def test_a_thought_signature_goes_back_with_its_function_call():
    call = calling(("c1", "get_weather", {}))
    call["tool_calls"][0]["extra_content"] = {"google": {"thought_signature": "c2lnbmF0dXJl"}}
    payload = request_body(body(user("x"), call, tool("c1", "ok")))
    assert payload["contents"][1]["parts"][0]["thoughtSignature"] == "c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "request_fields",
    [
        {"n": 3},
        {"tools": [{"type": "code_interpreter"}]},
        {"messages": [user([{"type": "video_url", "video_url": {}}])]},
    ],
)
def test_what_gemini_cannot_express_is_unsupported(request_fields):
    with pytest.raises(UpstreamError) as caught:
        request_body({**body(user("x")), **request_fields})
    assert caught.value.failure is Failure.UNSUPPORTED


def test_model_paths_in_the_url():
    assert model_path("gemini-2.5-flash") == "models/gemini-2.5-flash"
    assert model_path("tunedModels/my-model") == "tunedModels/my-model"
    assert model_path("a b") == "models/a%20b"


# --- answers -------------------------------------------------------------------------------------


def response(parts, finish_reason="STOP", **usage):
    counts = {"promptTokenCount": 11, "candidatesTokenCount": 3, "totalTokenCount": 14, **usage}
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish_reason, "index": 0}],
            "usageMetadata": counts, "modelVersion": "gemini-x-001", "responseId": "resp1"}  # fmt: skip


def test_a_text_answer_becomes_a_chat_completion_with_openai_usage():
    answer = completion_of(
        response([{"text": "thinking...", "thought": True}, {"text": "Hel"}, {"text": "lo"}],
                 thoughtsTokenCount=5, cachedContentTokenCount=4)
    )  # fmt: skip
    assert answer["id"] == "resp1" and answer["model"] == "gemini-x-001"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "Hello"}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": 11, "completion_tokens": 8, "total_tokens": 19,
                               "prompt_tokens_details": {"cached_tokens": 4},
                               "completion_tokens_details": {"reasoning_tokens": 5}}  # fmt: skip


def test_function_calls_get_stable_ids_and_finish_as_tool_calls():
    answer = completion_of(response([
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "get_time", "args": {}, "id": "gemini-own-id"}},
    ]))  # fmt: skip
    assert answer["choices"][0]["finish_reason"] == "tool_calls"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_resp1_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
         "extra_content": {"google": {"thought_signature": "c2ln"}}},
        {"id": "gemini-own-id", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]}  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "finish_reason"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
     ("PROHIBITED_CONTENT", "content_filter"), ("OTHER", "stop")],
)  # fmt: skip
def test_finish_reasons_map(reason, finish_reason):
    assert completion_of(response([{"text": "x"}], reason))["choices"][0]["finish_reason"] == finish_reason


def test_a_blocked_prompt_is_an_empty_content_filtered_answer():
    answer = completion_of({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}})
    assert answer["choices"][0]["message"]["content"] == ""
    assert answer["choices"][0]["finish_reason"] == "content_filter"


# --- streams -------------------------------------------------------------------------------------


def translate(events, request=None):
    return fed(GeminiEvents(request or body(user("x"))), events)


def test_stream_chunks_become_a_role_chunk_deltas_a_finish_chunk_and_the_last_usage():
    first = response([{"text": "Hel"}], candidatesTokenCount=1)
    del first["candidates"][0]["finishReason"]
    chunks = translate([first, response([{"text": "lo"}], candidatesTokenCount=2)],
                       body(user("x"), stream_options={"include_usage": True}))  # fmt: skip
    assert deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None), ({"content": "Hel"}, None), ({"content": "lo"}, None),
        ({}, "stop"), {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
    ]  # fmt: skip
    assert {c["id"] for c in chunks} == {"resp1"} and {c["model"] for c in chunks} == {"gemini-x-001"}


def test_a_streamed_function_call_comes_whole_with_its_index():
    chunks = translate([response([{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}])])
    assert deltas(chunks)[1:] == [
        ({"tool_calls": [{"index": 0, "id": "call_resp1_0", "type": "function",
                          "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]}, None),
        ({}, "tool_calls"),
    ]  # fmt: skip


def test_a_stream_without_a_finish_reason_is_incomplete():
    unfinished = response([{"text": "Hel"}])
    del unfinished["candidates"][0]["finishReason"]
    with pytest.raises(UpstreamError) as caught:
        translate([unfinished])
    assert caught.value.failure is Failure.BAD_RESPONSE


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        ({"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}, Failure.SERVER),
        ({"code": 429, "message": "Quota exceeded. Please retry in 3s.", "status": "RESOURCE_EXHAUSTED"}, Failure.RATE_LIMITED),
    ],
)  # fmt: skip
def test_an_error_object_in_the_stream_raises_its_failure(error, failure):
    translator = GeminiEvents(body(user("x")))
    list(translator.feed(response([{"text": "Hel"}], finish_reason=None)))
    with pytest.raises(UpstreamError) as caught:
        translator.feed({"error": error})
    assert caught.value.failure is failure
    assert caught.value.retry_after_s == (3 if failure is Failure.RATE_LIMITED else None)


# --- errors --------------------------------------------------------------------------------------

RPC = "type.googleapis.com/google.rpc."


def google_error(code, status, message, *details):
    return json.dumps(
        {"error": {"code": code, "message": message, "status": status, "details": list(details)}}
    ).encode()


def quota(quota_id, retry_delay="47s", message="You exceeded your current quota."):
    return google_error(
        429, "RESOURCE_EXHAUSTED", message,
        {"@type": RPC + "QuotaFailure", "violations": [{"quotaId": quota_id, "quotaMetric": "m"}]},
        {"@type": RPC + "RetryInfo", "retryDelay": retry_delay},
    )  # fmt: skip


def test_a_429_prefers_the_exact_wait_in_the_message_over_retry_info():
    error = classify(429, {}, quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "23s",
                                     "You exceeded your current quota.\nPlease retry in 23.4s."))  # fmt: skip
    assert error.failure is Failure.RATE_LIMITED and error.retry_after_s == pytest.approx(23.4)


def test_a_429_without_a_wait_in_the_message_takes_retry_info():
    error = classify(429, {}, quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "47s"))
    assert error.retry_after_s == 47


def test_a_per_day_quota_cools_the_account_until_the_quota_day_ends():
    error = classify(429, {}, quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "30s"))
    assert error.failure is Failure.RATE_LIMITED
    assert error.retry_after_s == pytest.approx(seconds_to_quota_day_end(), abs=5)
    assert error.retry_after_s > 30


def test_the_quota_day_ends_at_midnight_pacific_time():
    assert seconds_to_quota_day_end(datetime(2026, 1, 15, 7, 0, tzinfo=UTC)) == 1 * 3600  # 23:00 PST
    assert seconds_to_quota_day_end(datetime(2026, 7, 15, 6, 30, tzinfo=UTC)) == 30 * 60  # 23:30 PDT


def test_a_bad_key_400_with_api_key_invalid_disables_the_account():
    raw = google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                       {"@type": RPC + "ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"})  # fmt: skip
    error = classify(400, {}, raw)
    assert error.failure is Failure.AUTH and "API_KEY_INVALID" in error.message


@pytest.mark.parametrize(
    ("status", "code", "message", "failure"),
    [
        (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers", Failure.AUTH),
        (400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", Failure.CONTEXT_LENGTH),
        (404, "NOT_FOUND", "models/x is not found", Failure.NOT_FOUND),
        (503, "UNAVAILABLE", "The model is overloaded.", Failure.SERVER),
        (500, "INTERNAL", "An internal error has occurred.", Failure.SERVER),
    ],
)  # fmt: skip
def test_google_statuses_map_to_failures(status, code, message, failure):
    assert classify(status, {}, google_error(status, code, message)).failure is failure


def test_a_bad_request_names_the_status_and_the_field_for_the_client():
    raw = google_error(400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.temperature'",
                       {"@type": RPC + "BadRequest", "fieldViolations": [{"field": "generation_config.temperature"}]})  # fmt: skip
    error = classify(400, {}, raw)
    assert error.failure is Failure.CLIENT
    assert error.error == {"message": "Invalid value at 'generation_config.temperature'", "type": "invalid_request_error",
                           "code": "INVALID_ARGUMENT", "param": "generation_config.temperature"}  # fmt: skip


def test_a_list_wrapped_error_is_read_too():
    raw = b'[{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Please retry in 2s."}}]'
    assert classify(429, {}, raw).retry_after_s == 2
