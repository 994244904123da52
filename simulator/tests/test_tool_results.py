"""Once a tool's result is back, the simulated model answers in text (in every dialect): an agent loop that
offers tools on every turn ends, as it would with a real model, instead of calling the tool forever."""

from __future__ import annotations

from google.genai import types

from .helpers import ANTHROPIC_WEATHER_TOOL, HELLO, WEATHER_TOOL

ASKED = "What is the weather in Oslo?"


def test_openai_answers_after_the_tool_result_and_calls_again_on_a_new_user_turn(client, provider):
    first = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": ASKED}], tools=[WEATHER_TOOL]
    )
    call = first.choices[0].message.tool_calls[0]
    history = [
        {"role": "user", "content": ASKED},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
    ]
    answer = client.chat.completions.create(model="m", messages=history, tools=[WEATHER_TOOL])
    assert (answer.choices[0].message.content, answer.choices[0].finish_reason) == (
        f"Hello from {provider} (m).",
        "stop",
    )
    assert answer.choices[0].message.tool_calls is None
    streamed = client.chat.completions.create(model="m", messages=history, tools=[WEATHER_TOOL], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == f"Hello from {provider} (m)."

    again = [*history, {"role": "assistant", "content": "Sunny."}, {"role": "user", "content": "And Bergen?"}]
    next_turn = client.chat.completions.create(model="m", messages=again, tools=[WEATHER_TOOL])
    assert next_turn.choices[0].finish_reason == "tool_calls"


def test_anthropic_answers_after_the_tool_result(anthropic_client, provider):
    first = anthropic_client.messages.create(model="m", max_tokens=100, messages=HELLO, tools=[ANTHROPIC_WEATHER_TOOL])
    [use] = first.content
    history = [
        *HELLO,
        {"role": "assistant", "content": [use.model_dump(exclude_none=True)]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
    ]
    answer = anthropic_client.messages.create(
        model="m", max_tokens=100, messages=history, tools=[ANTHROPIC_WEATHER_TOOL]
    )
    assert [(b.type, b.text) for b in answer.content] == [("text", f"Hello from {provider} (m).")]
    assert answer.stop_reason == "end_turn"


def test_gemini_answers_after_the_function_response(gemini_client, provider):
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                parameters_json_schema=WEATHER_TOOL["function"]["parameters"],
            )
        ]
    )
    contents = [
        types.Content(role="user", parts=[types.Part(text="Hello there")]),
        types.Content(
            role="model", parts=[types.Part(function_call=types.FunctionCall(name="get_weather", args={"city": "sim"}))]
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(function_response=types.FunctionResponse(name="get_weather", response={"output": "sunny"}))
            ],
        ),
    ]
    response = gemini_client.models.generate_content(
        model="m", contents=contents, config=types.GenerateContentConfig(tools=[tool])
    )
    assert response.function_calls is None and response.text == f"Hello from {provider} (m)."


def test_cohere_answers_after_the_tool_result(cohere_client, provider):
    first = cohere_client.chat(model="m", messages=HELLO, tools=[WEATHER_TOOL])
    [call] = first.message.tool_calls
    history = [
        *HELLO,
        {"role": "assistant", "tool_plan": first.message.tool_plan, "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    answer = cohere_client.chat(model="m", messages=history, tools=[WEATHER_TOOL])
    assert answer.message.tool_calls is None
    assert answer.message.content[0].text == f"Hello from {provider} (m)."
