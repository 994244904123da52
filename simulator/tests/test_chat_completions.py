"""Non-streamed chat completions, read by the official openai SDK (and raw HTTP for what the SDK never sends)."""

from __future__ import annotations

import json
import time

import openai
import pytest

from .helpers import HELLO, TIME_TOOL, WEATHER_TOOL, json_headers


def test_completion_carries_the_deterministic_reply_usage_and_a_sim_id(client, provider):
    completion = client.chat.completions.create(model="sim-small", messages=HELLO)
    choice = completion.choices[0]
    assert choice.message.content == f"Hello from {provider} (sim-small)."
    assert choice.message.role == "assistant" and choice.message.refusal is None and choice.message.tool_calls is None
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert completion.id.startswith("chatcmpl-sim-") and completion.object == "chat.completion"
    assert completion.model == "sim-small" and completion.system_fingerprint
    assert abs(completion.created - time.time()) < 60
    # words: "Hello there" -> 2; "Hello from <provider> (sim-small)." -> 4
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        2,
        4,
        6,
    )


def test_logprobs_asked_for_come_a_token_per_word_with_their_bytes_and_alternatives(client, provider):
    completion = client.chat.completions.create(model="sim-small", messages=HELLO, logprobs=True, top_logprobs=2)
    entries = completion.choices[0].logprobs.content
    assert (
        "".join(e.token for e in entries)
        == completion.choices[0].message.content
        == f"Hello from {provider} (sim-small)."
    )
    assert [e.token for e in entries][:2] == ["Hello", " from"] and [e.logprob for e in entries][:2] == [-0.25, -0.5]
    assert all(bytes(e.bytes).decode() == e.token and e.top_logprobs[0].token == e.token for e in entries)
    assert [len(e.top_logprobs) for e in entries] == [2] * len(entries)
    plain = client.chat.completions.create(model="sim-small", messages=HELLO)
    assert plain.choices[0].logprobs is None


def test_each_completion_has_its_own_id(client):
    first = client.chat.completions.create(model="m", messages=HELLO)
    second = client.chat.completions.create(model="m", messages=HELLO)
    assert first.id != second.id


def test_echo_returns_the_rest_of_the_last_user_message_exactly(client):
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "echo: a  b\tc "}])
    assert reply.choices[0].message.content == "a  b\tc "
    assert reply.usage.completion_tokens == 3


def test_only_the_last_user_message_can_ask_for_an_echo(client, provider):
    messages = [
        {"role": "user", "content": "echo: old"},
        {"role": "assistant", "content": "old"},
        {"role": "user", "content": "and now?"},
    ]
    reply = client.chat.completions.create(model="sim-large", messages=messages)
    assert reply.choices[0].message.content == f"Hello from {provider} (sim-large)."
    assert reply.usage.prompt_tokens == 5


def test_echo_reads_text_content_parts(client):
    content = [{"type": "text", "text": "echo: from"}, {"type": "text", "text": "parts"}]
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": content}])
    assert reply.choices[0].message.content == "from parts"


async def test_the_async_client_gets_the_same_completion(async_client, provider):
    async with async_client:
        completion = await async_client.chat.completions.create(model="sim-small", messages=HELLO)
    assert completion.choices[0].message.content == f"Hello from {provider} (sim-small)."


def test_offered_tools_get_a_call_to_the_first_with_its_required_parameters(client):
    reply = client.chat.completions.create(model="m", messages=HELLO, tools=[WEATHER_TOOL, TIME_TOOL])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sim", "unit": "sim"}


def test_tool_choice_naming_a_function_calls_that_function(client):
    reply = client.chat.completions.create(
        model="m",
        messages=HELLO,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_time" and json.loads(call.function.arguments) == {"zone": "sim"}


def test_tool_choice_none_answers_in_text(client, provider):
    reply = client.chat.completions.create(model="m", messages=HELLO, tools=[WEATHER_TOOL], tool_choice="none")
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content == f"Hello from {provider} (m)."


def test_tool_choice_naming_an_unoffered_function_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="m", messages=HELLO, tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "x"}}
        )
    assert caught.value.param == "tool_choice"


def test_a_body_that_is_not_json_is_a_400_invalid_request_error(sim, provider, raw_http):
    response = raw_http("POST", f"{sim.base_url(provider)}/chat/completions", b"{not json", json_headers())
    assert response.status == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("body", "param"),
    [({"messages": [{"role": "user", "content": "hi"}]}, "model"), ({"model": "sim-small"}, "messages")],
    ids=["without-model", "without-messages"],
)
def test_a_body_missing_model_or_messages_is_a_400_naming_it(sim, provider, raw_http, body, param):
    url = f"{sim.base_url(provider)}/chat/completions"
    response = raw_http("POST", url, json.dumps(body).encode(), json_headers())
    assert response.status == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("authorization", [None, "Bearer ", "Basic abc"], ids=["absent", "empty", "not-bearer"])
def test_a_request_without_a_bearer_key_is_a_401_invalid_api_key(sim, provider, raw_http, authorization):
    headers = json_headers(api_key=None)
    if authorization is not None:
        headers["Authorization"] = authorization
    body = json.dumps({"model": "m", "messages": HELLO}).encode()
    response = raw_http("POST", f"{sim.base_url(provider)}/chat/completions", body, headers)
    assert response.status == 401
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, "invalid_api_key")
    assert error["message"]


def test_an_unknown_route_is_an_openai_style_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.post("/completions/legacy", body={}, cast_to=object)
    assert "Invalid URL (POST /v1/completions/legacy)" in caught.value.message
