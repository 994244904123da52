"""Streamed Gemini answers (`:streamGenerateContent?alt=sse`): data-only SSE, no end marker, usage at the end."""

from __future__ import annotations

import json

import pytest
from google.genai import types as genai_types

from .helpers import API_KEY, json_body, provider_root, sse_events

pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
ECHO = "echo: one two  three"
WEATHER = genai_types.FunctionDeclaration(
    name="get_weather",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_the_wire_has_data_lines_ended_by_crlf_and_no_end_marker(sim, provider, raw_http):
    response = raw_http(
        "POST",
        f"{provider_root(sim, provider)}/v1beta/models/sim-small:streamGenerateContent?alt=sse",
        json_body({"contents": [{"role": "user", "parts": [{"text": ECHO}]}]}),
        {"Content-Type": "application/json", "x-goog-api-key": API_KEY},
    )
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.body.startswith(b"data: {") and response.body.endswith(b"}\r\n\r\n")
    events = sse_events(response.body, separator=b"\r\n\r\n")
    assert [name for name, _ in events] == [None] * 4
    chunks = [data for _, data in events]
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks] == ["one", " two", " ", " three"]
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, None, "STOP"]
    assert [c["usageMetadata"]["candidatesTokenCount"] for c in chunks] == [1, 2, 2, 3]
    assert chunks[-1]["usageMetadata"] == {
        "promptTokenCount": 4,
        "candidatesTokenCount": 3,
        "totalTokenCount": 7,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4}],
    }
    assert len({c["responseId"] for c in chunks}) == 1
    assert sim.requests(provider)[-1]["query"] == {"alt": "sse"}


def test_the_sdk_streams_one_chunk_per_word_and_finishes_with_stop_and_usage(gemini_client):
    chunks = list(gemini_client.models.generate_content_stream(model="sim-small", contents=ECHO))
    assert [c.text for c in chunks] == ["one", " two", " ", " three"]
    assert [c.candidates[0].finish_reason for c in chunks] == [None, None, None, "STOP"]
    usage = chunks[-1].usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (4, 3, 7)


def test_a_streamed_function_call_comes_whole_in_one_chunk(gemini_client):
    chunks = list(
        gemini_client.models.generate_content_stream(
            model="m",
            contents="Hello there",
            config=genai_types.GenerateContentConfig(tools=[genai_types.Tool(function_declarations=[WEATHER])]),
        )
    )
    [chunk] = chunks
    assert [(c.name, c.args) for c in chunk.function_calls] == [("get_weather", {"city": "sim"})]
    assert chunk.candidates[0].finish_reason == "STOP"
    assert chunk.usage_metadata.candidates_token_count == len(json.dumps({"city": "sim"}).split())


def test_a_chat_session_records_every_streamed_chunk_in_its_history(gemini_client):
    chat = gemini_client.chats.create(model="m")
    streamed = "".join(chunk.text for chunk in chat.send_message_stream(ECHO))
    user_turn, *model_turns = chat.get_history(curated=True)  # the SDK keeps one model turn per chunk
    assert (user_turn.role, user_turn.parts[0].text) == ("user", ECHO)
    assert {turn.role for turn in model_turns} == {"model"} and len(model_turns) == 4
    assert streamed == "".join(part.text for turn in model_turns for part in turn.parts) == "one two  three"


async def test_the_async_client_streams_the_same_chunks(gemini_client):
    stream = await gemini_client.aio.models.generate_content_stream(model="m", contents=ECHO)
    chunks = [chunk async for chunk in stream]
    assert "".join(c.text for c in chunks) == "one two  three"
    assert chunks[-1].usage_metadata.candidates_token_count == 3
