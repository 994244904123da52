"""Anthropic, Gemini and Cohere providers through the whole stack: the official openai SDK talks to
Envoy, the router translates to each provider's own protocol, the simulator answers in it.

This module runs its own simulator and stack, with its own providers (every one speaking a native
protocol), so no other test's cooldowns, disabled keys or circuits reach it. Each scenario is an
alias served by one or two providers; `arrivals` tells from the simulator's request log which of
them was called, in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from llmagg_devstack import SimulatorProcess, Stack, write_config

from ..helpers import ROUTER_TEST_ENV, SIM_KEY, SIM_KEY_ENV, create_client_key

DIALECTS = {  # provider prefix -> (protocol, base path under /<name>, auth style)
    "claude": ("anthropic", "/v1", "x-api-key"),
    "gemini": ("gemini", "/v1beta", "x-goog-api-key"),
    "cohere": ("cohere", "/v2", "bearer"),
}
# scenario -> the faults of its first provider (a second, healthy one backs it up unless None)
FAULTY = {
    "ok": None,
    "429": {"type": "429", "retry_after": 30},
    "busy": {"type": "503"},  # Anthropic: 529 overloaded_error; Gemini: 503 UNAVAILABLE; Cohere: 503
    "badkey": {"type": "401"},  # Gemini: 400 INVALID_ARGUMENT with reason API_KEY_INVALID
    "cut-late": {"type": "cut_stream", "after_chunks": 2},
    "cut-early": {"type": "cut_stream", "after_chunks": 0},
    "stream-error": {"type": "stream_error", "after_chunks": 2},
    "garbled": {"type": "malformed_json"},
    "hang": {"type": "hang"},
    "reject": {"type": "400"},
}
ALONE = {"only-429": {"type": "429", "retry_after": 7}}  # scenarios without a backup
PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "echo: one two three"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city now",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
EXPECTED_USAGE = (6, 3, 9)  # the simulator counts words: "Be brief." + "echo: one two three"; "one two three"
DIALECT_IDS = list(DIALECTS)


def providers_of(dialect: str, scenario: str) -> list[str]:
    """The providers of a scenario, in the order they are meant to be tried."""
    first = f"{dialect}-{scenario}"
    return [first] if scenario in ALONE or scenario == "ok" else [first, f"{first}-backup"]


def startup_behaviours() -> dict[str, dict]:
    return {
        f"{dialect}-{scenario}": fault
        for dialect in DIALECTS
        for scenario, fault in {**FAULTY, **ALONE}.items()
        if fault is not None
    }


def routing_config(simulator: SimulatorProcess) -> dict:
    providers = []
    for dialect, (protocol, base_path, auth) in DIALECTS.items():
        for scenario in [*FAULTY, *ALONE]:
            for speed, name in zip((5, 1), providers_of(dialect, scenario), strict=False):
                providers.append({
                    "id": name, "name": f"Simulated {name}", "protocol": protocol, "auth": auth,
                    "base_url": f"{simulator.url}/{name}{base_path}", "speed": speed,
                    "models": [{"id": "sim-small", "quality": 3, "context_window": 32768,
                                "aliases": [f"{dialect}-{scenario}-model"]}],
                })  # fmt: skip
    accounts = [{"provider": p["id"], "alias": f"{p['id']}-acct", "api_key_env": SIM_KEY_ENV} for p in providers]
    return {"providers": providers, "accounts": accounts}


@pytest.fixture(scope="module")
def native_sim(tmp_path_factory) -> Iterator[SimulatorProcess]:
    log_path = tmp_path_factory.mktemp("native-simulator") / "sim.log"
    with SimulatorProcess(startup_behaviours(), log_path=log_path) as sim:
        yield sim


@pytest.fixture(scope="module")
def native_stack(native_sim, tmp_path_factory, make_stack) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("native-stack")
    config = write_config(run_dir / "config.yaml", routing_config(native_sim))
    with make_stack(run_dir).running({**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(config)}) as stack:
        yield stack


@pytest.fixture(scope="module")
def client(native_stack) -> openai.OpenAI:
    key = create_client_key(native_stack, "native protocols e2e")
    return openai.OpenAI(base_url=native_stack.base_url, api_key=key, max_retries=0, timeout=30)


def scenario(sim: SimulatorProcess, dialect: str, name: str) -> tuple[str, list[str]]:
    """The alias of a scenario and its providers, their request logs emptied."""
    names = providers_of(dialect, name)
    for provider in names:
        sim.reset(provider)
    return f"{dialect}-{name}-model", names


def arrivals(sim: SimulatorProcess, providers: list[str]) -> list[str]:
    logged = [(request["seq"], name) for name in providers for request in sim.requests(name)]
    return [name for _, name in sorted(logged)]


def streamed_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECT_IDS)
def test_a_chat_round_trip_in_the_providers_own_protocol(client, native_sim, dialect):
    model, [name] = scenario(native_sim, dialect, "ok")
    raw = client.chat.completions.with_raw_response.create(model=model, messages=PROMPT)
    completion = raw.parse()
    assert completion.choices[0].message.content == "one two three"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == EXPECTED_USAGE
    assert (completion.provider, raw.headers["x-llmagg-provider"], raw.headers["x-llmagg-attempts"]) == (
        name,
        name,
        "1",
    )
    # The router read the answer as a stream, in the provider's own protocol, with the account's key.
    [sent] = native_sim.requests(name)
    protocol = DIALECTS[dialect][0]
    if protocol == "anthropic":
        assert (sent["path"], sent["query"]) == (f"/{name}/v1/messages", {})
        assert sent["headers"]["x-api-key"] == SIM_KEY and sent["headers"]["anthropic-version"] == "2023-06-01"
        assert sent["body"] == {"model": "sim-small", "max_tokens": 4096, "stream": True,
                                "system": [{"type": "text", "text": "Be brief."}],
                                "messages": [{"role": "user", "content": [{"type": "text", "text": "echo: one two three"}]}]}  # fmt: skip
    elif protocol == "gemini":
        assert (sent["path"], sent["query"]) == (
            f"/{name}/v1beta/models/sim-small:streamGenerateContent",
            {"alt": "sse"},
        )
        assert sent["headers"]["x-goog-api-key"] == SIM_KEY
        assert sent["body"] == {"systemInstruction": {"parts": [{"text": "Be brief."}]},
                                "contents": [{"role": "user", "parts": [{"text": "echo: one two three"}]}]}  # fmt: skip
    else:
        assert (sent["path"], sent["query"]) == (f"/{name}/v2/chat", {})
        assert sent["headers"]["authorization"] == f"Bearer {SIM_KEY}"
        assert sent["body"] == {"model": "sim-small", "stream": True, "messages": PROMPT}


@pytest.mark.parametrize("dialect", DIALECT_IDS)
def test_a_stream_round_trip_with_usage(client, native_sim, dialect):
    model, [name] = scenario(native_sim, dialect, "ok")
    chunks = list(
        client.chat.completions.create(
            model=model, messages=PROMPT, stream=True, stream_options={"include_usage": True}
        )
    )
    assert [c.choices[0].delta.content for c in chunks[1:4]] == ["one", " two", " three"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[4].choices[0].finish_reason == "stop"
    assert chunks[5].choices == []
    assert (
        chunks[5].usage.prompt_tokens,
        chunks[5].usage.completion_tokens,
        chunks[5].usage.total_tokens,
    ) == EXPECTED_USAGE
    assert len(chunks) == 6 and {c.provider for c in chunks} == {name}
    assert len(native_sim.requests(name)) == 1


@pytest.mark.parametrize("dialect", DIALECT_IDS)
def test_a_tool_call_and_its_result_sent_back(client, native_sim, dialect):
    model, [name] = scenario(native_sim, dialect, "ok")
    question = [{"role": "user", "content": "What is the weather in Oslo?"}]
    with client.chat.completions.stream(model=model, messages=question, tools=[WEATHER]) as stream:
        first = stream.get_final_completion()
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "sim"}
    assert call.id

    history = [*question, first.choices[0].message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]  # fmt: skip
    final = client.chat.completions.create(model=model, messages=history, tools=[WEATHER], tool_choice="none")
    assert final.choices[0].message.content == f"Hello from {name} (sim-small)."
    assert final.choices[0].finish_reason == "stop"
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens > 0

    # The result reached the provider in its own shape, tied to the call it answers.
    first_sent, second_sent = (request["body"] for request in native_sim.requests(name))
    protocol = DIALECTS[dialect][0]
    if protocol == "anthropic":
        assert first_sent["tools"] == [{"name": "get_weather", "description": "The weather in a city now",
                                        "input_schema": WEATHER["function"]["parameters"]}]  # fmt: skip
        assert second_sent["messages"][1:] == [
            {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "sim"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"}]},
        ]  # fmt: skip
        assert second_sent["tool_choice"] == {"type": "none"}
    elif protocol == "gemini":
        assert first_sent["tools"] == [{"functionDeclarations": [{
            "name": "get_weather", "description": "The weather in a city now",
            "parametersJsonSchema": WEATHER["function"]["parameters"]}]}]  # fmt: skip
        assert second_sent["contents"][1:] == [
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "sim"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny, 21 C"}}}]},
        ]  # fmt: skip
        assert second_sent["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    else:
        assert first_sent["tools"] == [WEATHER]
        assert second_sent["messages"][1:] == [
            {"role": "assistant", "tool_calls": [{"id": call.id, "type": "function",
                                                  "function": {"name": "get_weather", "arguments": call.function.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
        ]  # fmt: skip
        assert second_sent["tool_choice"] == "NONE"


def test_anthropic_answers_a_json_schema_request_through_a_forced_tool_as_plain_content(client, native_sim):
    model, [name] = scenario(native_sim, "claude", "ok")
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    completion = client.chat.completions.create(
        model=model,
        messages=PROMPT,
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )
    assert json.loads(completion.choices[0].message.content) == {"city": "sim"}
    assert completion.choices[0].message.tool_calls is None and completion.choices[0].finish_reason == "stop"
    [sent] = native_sim.requests(name)
    assert sent["body"]["tool_choice"] == {"type": "tool", "name": "json_answer"}


@pytest.mark.parametrize(
    ("dialect", "field", "expected"),
    [
        ("gemini", "generationConfig", {"responseMimeType": "application/json"}),
        ("cohere", "response_format", {"type": "json_object"}),
    ],
)
def test_json_mode_reaches_gemini_and_cohere_in_their_own_fields(client, native_sim, dialect, field, expected):
    model, [name] = scenario(native_sim, dialect, "ok")
    client.chat.completions.create(model=model, messages=PROMPT, response_format={"type": "json_object"})
    [sent] = native_sim.requests(name)
    assert sent["body"][field] == expected


def test_models_lists_the_native_providers(client):
    ids = {m.id for m in client.models.list()}
    assert {"claude-ok/sim-small", "gemini-ok/sim-small", "cohere-ok/sim-small"} <= ids


def test_the_router_warned_at_start_of_the_provider_it_cannot_route(native_stack):
    lines = [json.loads(line) for line in (native_stack.run_dir / "router.log").read_text().splitlines()]
    [warning] = [line for line in lines if line["msg"].startswith("not routable")]
    assert warning["level"] == "warning" and "nlp-cloud (nlpcloud)" in warning["msg"]


# --- faults, in each provider's own error shapes --------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECT_IDS)
def test_a_429_cools_the_account_for_the_providers_delay_and_falls_over(client, native_sim, dialect):
    model, providers = scenario(native_sim, dialect, "429")
    raw = client.chat.completions.with_raw_response.create(model=model, messages=PROMPT)
    assert (raw.parse().provider, raw.headers["x-llmagg-attempts"]) == (providers[1], "2")
    client.chat.completions.create(model=model, messages=PROMPT)
    assert arrivals(native_sim, providers) == [providers[0], providers[1], providers[1]]  # cooling: not asked again


@pytest.mark.parametrize("dialect", DIALECT_IDS)
def test_when_the_only_account_is_rate_limited_the_client_waits_the_providers_delay(client, native_sim, dialect):
    """Gemini says it in RESOURCE_EXHAUSTED's message and RetryInfo; Anthropic and Cohere in retry-after."""
    model, providers = scenario(native_sim, dialect, "only-429")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=model, messages=PROMPT)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.RateLimitError) as again:
        client.chat.completions.create(model=model, messages=PROMPT)
    assert 1 <= int(again.value.response.headers["retry-after"]) <= 7
    assert arrivals(native_sim, providers) == providers  # the second request never reached the provider


@pytest.mark.parametrize("dialect", DIALECT_IDS)
def test_an_overloaded_provider_falls_over_without_cooling_the_account(client, native_sim, dialect):
    model, providers = scenario(native_sim, dialect, "busy")
    for _ in range(2):
        assert client.chat.completions.create(model=model, messages=PROMPT).provider == providers[1]
    assert arrivals(native_sim, providers) == providers * 2  # overload is capacity, not this account's quota


@pytest.mark.parametrize("dialect", DIALECT_IDS)
def test_a_rejected_key_disables_the_account(client, native_sim, dialect):
    model, providers = scenario(native_sim, dialect, "badkey")
    for _ in range(2):
        assert client.chat.completions.create(model=model, messages=PROMPT).provider == providers[1]
    assert arrivals(native_sim, providers) == [providers[0], providers[1], providers[1]]


@pytest.mark.parametrize("dialect", DIALECT_IDS)
@pytest.mark.parametrize("fault", ["cut-late", "stream-error"])
def test_a_stream_broken_after_content_ends_with_an_explicit_error(client, native_sim, dialect, fault):
    model, providers = scenario(native_sim, dialect, fault)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model=model, messages=PROMPT, stream=True):
            received.append(chunk)
    assert streamed_text(received) == "one two"  # every piece sent before the break, nothing after it
    assert caught.value.code == "upstream_stream_interrupted" and providers[0] in caught.value.message
    assert arrivals(native_sim, providers) == providers[:1]  # no silent retry once content reached the client


@pytest.mark.parametrize("dialect", DIALECT_IDS)
@pytest.mark.parametrize("fault", ["cut-early", "garbled", "hang"])
def test_an_upstream_that_fails_before_content_falls_over(client, native_sim, dialect, fault):
    model, providers = scenario(native_sim, dialect, fault)
    chunks = list(client.chat.completions.create(model=model, messages=PROMPT, stream=True))
    assert streamed_text(chunks) == "one two three" and {c.provider for c in chunks} == {providers[1]}
    assert arrivals(native_sim, providers) == providers


@pytest.mark.parametrize("dialect", DIALECT_IDS)
def test_a_request_the_provider_rejects_comes_back_as_a_400_without_fallback(client, native_sim, dialect):
    model, providers = scenario(native_sim, dialect, "reject")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=PROMPT)
    assert caught.value.status_code == 400 and caught.value.message
    assert arrivals(native_sim, providers) == providers[:1]


def test_no_key_reaches_a_client_or_a_log(client, native_stack, native_sim):
    for dialect in DIALECT_IDS:
        model, _ = scenario(native_sim, dialect, "badkey")
        client.chat.completions.create(model=model, messages=PROMPT)
    for process in native_stack.processes:
        assert SIM_KEY not in process.output(), process.name
        assert client.api_key not in process.output(), process.name
