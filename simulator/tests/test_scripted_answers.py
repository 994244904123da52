"""`answer` faults: the simulated model says exactly what a test scripts (text, tool calls or both), whole or
streamed, in the OpenAI dialect; queued like every other fault."""

from __future__ import annotations

import json

import openai
import pytest

from llmagg_devstack import SimulatorError

from .helpers import HELLO, WEATHER_TOOL, anthropic_for

READ = {"name": "read_file", "arguments": {"filepath": "src/app.py"}, "id": "call_read_1"}
WRITE = {"name": "write_file", "arguments": {"filepath": "out.py", "content": "print('hi')\n"}}


def test_a_scripted_tool_call_is_answered_whole_with_its_name_arguments_and_id(sim, client, provider):
    sim.script(provider, [{"type": "answer", "tool_calls": [READ]}])
    reply = client.chat.completions.create(model="m", messages=HELLO, tools=[WEATHER_TOOL])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.id, call.type, call.function.name) == ("call_read_1", "function", "read_file")
    assert json.loads(call.function.arguments) == {"filepath": "src/app.py"}
    assert reply.usage.completion_tokens == 2  # the arguments' two words


def test_scripted_answers_are_used_in_order_then_the_default_reply_returns(sim, client, provider):
    sim.script(provider, [{"type": "answer", "tool_calls": [READ, WRITE]}, {"type": "answer", "content": "Done."}])
    first = client.chat.completions.create(model="m", messages=HELLO)
    calls = first.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["read_file", "write_file"]
    assert calls[1].id.startswith("call_") and calls[1].id != calls[0].id
    assert json.loads(calls[1].function.arguments) == WRITE["arguments"]
    second = client.chat.completions.create(model="m", messages=HELLO, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Done." and second.choices[0].message.tool_calls is None
    assert second.choices[0].finish_reason == "stop"
    third = client.chat.completions.create(model="m", messages=HELLO)
    assert third.choices[0].message.content == f"Hello from {provider} (m)."


def test_text_and_tool_calls_together(sim, client, provider):
    sim.script(provider, [{"type": "answer", "content": "Let me look.", "tool_calls": [READ]}])
    message = client.chat.completions.create(model="m", messages=HELLO).choices[0].message
    assert message.content == "Let me look." and message.tool_calls[0].function.name == "read_file"


def test_arguments_scripted_as_text_are_sent_verbatim_even_when_not_json(sim, client, provider):
    sim.script(provider, [{"type": "answer", "tool_calls": [{"name": "read_file", "arguments": '{"filepath": '}]}])
    call = client.chat.completions.create(model="m", messages=HELLO).choices[0].message.tool_calls[0]
    assert call.function.arguments == '{"filepath": '


def test_a_scripted_answer_streams_and_reassembles_exactly(sim, client, provider):
    sim.script(provider, [{"type": "answer", "content": "Reading two files.", "tool_calls": [READ, WRITE]}])
    chunks = list(
        client.chat.completions.create(model="m", messages=HELLO, stream=True, stream_options={"include_usage": True})
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Reading two files."
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            entry["id"] = delta.id or entry["id"]
            entry["name"] = (delta.function.name if delta.function else None) or entry["name"]
            entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
    assert calls[0]["id"] == "call_read_1" and calls[0]["name"] == "read_file"
    assert json.loads(calls[0]["arguments"]) == READ["arguments"]
    assert calls[1]["name"] == "write_file" and json.loads(calls[1]["arguments"]) == WRITE["arguments"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    # Completion tokens: the words of the text and of each call's arguments.
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3 + 2 + 4


def test_the_sdk_stream_helper_collects_a_scripted_tool_call(sim, client, provider):
    sim.script(provider, [{"type": "answer", "tool_calls": [READ]}])
    with client.chat.completions.stream(model="m", messages=HELLO) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls
    assert call.id == "call_read_1" and json.loads(call.function.arguments) == READ["arguments"]


def test_a_scripted_answer_with_count_repeats(sim, client, provider):
    sim.script(provider, [{"type": "answer", "content": "again", "count": 2}])
    replies = [client.chat.completions.create(model="m", messages=HELLO).choices[0].message.content for _ in range(3)]
    assert replies == ["again", "again", f"Hello from {provider} (m)."]


def test_a_route_that_cannot_script_answers_refuses_the_fault_in_its_dialect(sim, client, provider):
    sim.script(provider, [{"type": "answer", "content": "x"}])
    with anthropic_for(sim, provider) as claude, pytest.raises(Exception) as caught:
        claude.messages.create(model="sim-small", max_tokens=5, messages=HELLO)
    assert getattr(caught.value, "status_code", None) == 400
    assert "OpenAI chat completions only" in str(caught.value)
    assert sim.state(provider)["queue"] == []  # the fault was used up, like any other
    sim.script(provider, [{"type": "answer", "content": "x"}])
    with pytest.raises(openai.BadRequestError):  # embeddings cannot script one either
        client.embeddings.create(model="sim-embed", input="a")


@pytest.mark.parametrize(
    ("fault", "complaint"),
    [
        ({"type": "answer"}, "needs `content`, `tool_calls` or both"),
        ({"type": "answer", "content": 3}, "`content` must be a string"),
        ({"type": "answer", "tool_calls": {"name": "x"}}, "`tool_calls` must be a list"),
        ({"type": "answer", "tool_calls": [{"arguments": {}}]}, "tool_calls[0] needs a `name`"),
        ({"type": "answer", "tool_calls": [{"name": "x", "arguments": 5}]}, "tool_calls[0].arguments must be"),
        ({"type": "answer", "tool_calls": [{"name": "x", "extra": 1}]}, "unknown keys ['extra']"),
        ({"type": "500", "content": "x"}, "unknown fault keys ['content']"),
    ],
)
def test_a_malformed_answer_is_refused_whole_with_the_reason(sim, provider, fault, complaint):
    with pytest.raises(SimulatorError) as caught:
        sim.script(provider, [{"type": "answer", "content": "fine"}, fault])
    assert complaint in str(caught.value)
    assert sim.state(provider)["queue"] == []


def test_the_queue_describes_a_scripted_answer(sim, provider):
    sim.script(provider, [{"type": "answer", "content": "hi", "tool_calls": [READ]}])
    [queued] = sim.state(provider)["queue"]
    assert queued["type"] == "answer" and queued["content"] == "hi"
    assert queued["tool_calls"] == [
        {"name": "read_file", "arguments": '{"filepath": "src/app.py"}', "id": "call_read_1"}
    ]
