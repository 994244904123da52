"""Anthropic Messages (`/<name>/v1/messages`, `/<name>/v1/models`) as the official anthropic SDK sees them."""

from __future__ import annotations

from itertools import islice

import anthropic
import pytest
from anthropic import Omit

from .helpers import (
    ANTHROPIC_TIME_TOOL,
    ANTHROPIC_WEATHER_TOOL,
    API_KEY,
    anthropic_for,
    json_body,
    provider_root,
)

HELLO = [{"role": "user", "content": "Hello there"}]
VERSION = "2023-06-01"


def _headers(**extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "x-api-key": API_KEY, "anthropic-version": VERSION, **extra}


def test_a_message_says_hello_with_end_turn_usage_and_a_request_id(anthropic_client, provider):
    message = anthropic_client.messages.create(model="sim-small", max_tokens=100, system="Be brief.", messages=HELLO)
    assert [(block.type, block.text) for block in message.content] == [("text", f"Hello from {provider} (sim-small).")]
    assert (message.type, message.role, message.model) == ("message", "assistant", "sim-small")
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 4)  # system and messages; the reply
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (0, 0)
    assert message.id.startswith("msg_sim_") and message._request_id.startswith("req_sim_")


async def test_the_async_client_gets_the_text_after_echo_in_the_last_user_message(async_anthropic_client):
    async with async_anthropic_client as api:
        message = await api.messages.create(
            model="sim-large",
            max_tokens=100,
            messages=[
                {"role": "user", "content": "echo: first"},
                {"role": "assistant", "content": "first"},
                {"role": "user", "content": [{"type": "text", "text": "echo: two  spaces"}]},
            ],
        )
    assert message.content[0].text == "two  spaces" and message.usage.output_tokens == 2


def test_max_tokens_cuts_the_reply_and_says_so(anthropic_client):
    message = anthropic_client.messages.create(
        model="m", max_tokens=2, messages=[{"role": "user", "content": "echo: one two three four"}]
    )
    assert (message.content[0].text, message.stop_reason, message.usage.output_tokens) == ("one two", "max_tokens", 2)


def test_a_stop_sequence_ends_the_reply_before_it(anthropic_client):
    message = anthropic_client.messages.create(
        model="m",
        max_tokens=100,
        stop_sequences=["never", "STOP"],
        messages=[{"role": "user", "content": "echo: one two STOP three"}],
    )
    assert (message.content[0].text, message.stop_reason, message.stop_sequence) == (
        "one two ",
        "stop_sequence",
        "STOP",
    )


def test_offered_tools_get_one_tool_use_of_the_first_with_required_inputs_set(anthropic_client):
    message = anthropic_client.messages.create(
        model="m", max_tokens=100, messages=HELLO, tools=[ANTHROPIC_WEATHER_TOOL, ANTHROPIC_TIME_TOOL]
    )
    [block] = message.content
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"city": "sim", "unit": "sim"})
    assert block.id.startswith("toolu_sim_") and message.stop_reason == "tool_use"


def test_tool_results_count_as_input_and_the_reply_follows_the_last_user_turn(anthropic_client, provider):
    message = anthropic_client.messages.create(
        model="m",
        max_tokens=100,
        messages=[
            *HELLO,
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_time", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "noon in Paris"}]},
        ],
    )
    assert message.content[0].text == f"Hello from {provider} (m)."
    assert message.usage.input_tokens == 5  # "Hello there" and "noon in Paris"


def test_tool_choice_picks_the_named_tool_or_none(anthropic_client):
    tools = [ANTHROPIC_WEATHER_TOOL, ANTHROPIC_TIME_TOOL]
    named = anthropic_client.messages.create(
        model="m", max_tokens=100, messages=HELLO, tools=tools, tool_choice={"type": "tool", "name": "get_time"}
    )
    assert (named.content[0].name, named.content[0].input) == ("get_time", {"zone": "sim"})
    none = anthropic_client.messages.create(
        model="m", max_tokens=100, messages=HELLO, tools=tools, tool_choice={"type": "none"}
    )
    assert (none.content[0].type, none.stop_reason) == ("text", "end_turn")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"messages": []}, "messages: at least one message is required"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role: Input should be 'user' or 'assistant'"),
        ({"tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice: Tool 'nope' not found in provided tools"),
    ],
)
def test_a_body_anthropic_would_refuse_is_an_invalid_request_error(sim, provider, raw_http, change, message):
    body = {"model": "m", "max_tokens": 10, "messages": HELLO, **change}
    response = raw_http("POST", f"{provider_root(sim, provider)}/v1/messages", json_body(body), _headers())
    assert response.status == 400
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
        "request_id": response.headers["request-id"],
    }


def test_a_system_role_in_messages_is_refused_by_the_sdk_as_a_bad_request(anthropic_client):
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_client.messages.create(
            model="m", max_tokens=10, messages=[{"role": "system", "content": "x"}, *HELLO]
        )
    assert caught.value.status_code == 400 and caught.value.body["error"]["message"].startswith(
        'messages: Unexpected role "system"'
    )


def test_a_request_without_a_key_is_an_authentication_error(sim, provider):
    with (
        anthropic_for(sim, provider, default_headers={"Authorization": Omit()}) as api,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        api.messages.create(model="m", max_tokens=10, messages=HELLO)
    assert caught.value.body["error"] == {"type": "authentication_error", "message": "x-api-key header is required"}
    assert "authorization" not in sim.requests(provider)[-1]["headers"]


def test_x_api_key_is_accepted_and_anthropic_version_is_required(sim, provider, raw_http):
    url, body = (
        f"{provider_root(sim, provider)}/v1/messages",
        json_body({"model": "m", "max_tokens": 5, "messages": HELLO}),
    )
    assert raw_http("POST", url, body, _headers()).json()["content"][0]["text"] == f"Hello from {provider} (m)."
    versionless = raw_http("POST", url, body, {"Content-Type": "application/json", "x-api-key": API_KEY})
    assert (versionless.status, versionless.json()["error"]) == (
        400,
        {"type": "invalid_request_error", "message": "anthropic-version: header is required"},
    )


def test_the_request_log_shows_what_the_sdk_sent(sim, anthropic_client, provider):
    anthropic_client.messages.create(model="sim-small", max_tokens=7, system="sys", messages=HELLO)
    [logged] = sim.requests(provider)
    assert (logged["method"], logged["path"], logged["query"]) == ("POST", f"/{provider}/v1/messages", {})
    assert logged["headers"]["anthropic-version"] == anthropic_client.default_headers["anthropic-version"]
    assert logged["headers"]["authorization"] == f"Bearer {API_KEY}"  # this SDK sends its key as a Bearer token
    assert logged["body"] == {"model": "sim-small", "max_tokens": 7, "system": "sys", "messages": HELLO}


def test_the_models_list_pages_by_after_id_as_the_sdk_auto_pager_follows(sim, anthropic_client, provider):
    models = list(islice(anthropic_client.models.list(limit=2), 5))  # bounded: a broken pager must not loop
    assert [m.id for m in models] == ["sim-small", "sim-large", "sim-embed"]
    assert (models[0].display_name, models[0].type, models[0].lifecycle) == ("Sim Small", "model", "active")
    assert models[0].created_at.isoformat() == "2023-11-14T22:13:20+00:00"
    assert [r["query"] for r in sim.requests(provider)] == [{"limit": "2"}, {"limit": "2", "after_id": "sim-large"}]


def test_the_models_list_pages_backwards_by_before_id(sim, anthropic_client, provider):
    models = list(islice(anthropic_client.models.list(before_id="sim-embed", limit=1), 5))
    assert [m.id for m in models] == ["sim-large", "sim-small"]
    assert [r["query"] for r in sim.requests(provider)] == [
        {"before_id": "sim-embed", "limit": "1"},
        {"before_id": "sim-large", "limit": "1"},
    ]


def test_a_model_is_retrieved_by_id_and_an_unknown_one_is_not_found(anthropic_client):
    assert anthropic_client.models.retrieve("sim-large").max_input_tokens == 131072
    with pytest.raises(anthropic.NotFoundError) as caught:
        anthropic_client.models.retrieve("nope")
    assert caught.value.body["error"] == {"type": "not_found_error", "message": "model: nope"}
