"""The simulator speaks the OpenAI wire format: proven by the official openai SDK talking to it."""

from __future__ import annotations

import json

import openai
import pytest

from provider_simulator.testing import SimulatorProcess

HELLO = [{"role": "user", "content": "Hello there"}]
WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


@pytest.fixture(scope="module")
def sim():
    with SimulatorProcess(providers={"always-429": "429"}) as simulator:
        yield simulator


@pytest.fixture
def client(sim, request):
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    sim.reset(name)
    return openai.OpenAI(base_url=sim.base_url(name), api_key="sk-sim", max_retries=0, timeout=10), name


def test_chat_completion_parses_with_content_usage_and_id(client):
    api, name = client
    completion = api.chat.completions.create(model="sim-small", messages=HELLO)
    assert completion.id.startswith("chatcmpl-sim-")
    assert completion.choices[0].message.content == f"Hello from {name} (sim-small)."
    assert completion.choices[0].finish_reason == "stop"
    assert (
        completion.usage.prompt_tokens == 2 and completion.usage.total_tokens == 2 + completion.usage.completion_tokens
    )


def test_echo_replies_with_the_users_text(client):
    api, _ = client
    reply = api.chat.completions.create(model="m", messages=[{"role": "user", "content": "echo: a  b c"}])
    assert reply.choices[0].message.content == "a  b c"


def test_stream_reassembles_and_ends_with_a_usage_chunk(client):
    api, _ = client
    chunks = list(
        api.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "echo: one two three"}], stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    assert len({c.id for c in chunks}) == 1


def test_stream_helper_collects_the_final_completion(client):
    api, _ = client
    with api.chat.completions.stream(model="m", messages=[{"role": "user", "content": "echo: hi you"}]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "hi you"


def test_tool_calls_non_stream(client):
    api, _ = client
    reply = api.chat.completions.create(model="m", messages=HELLO, tools=WEATHER)
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls" and reply.choices[0].message.content is None
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "sim"}


def test_tool_calls_stream_accumulate_in_the_sdk_helper(client):
    api, _ = client
    with api.chat.completions.stream(model="m", messages=HELLO, tools=WEATHER) as stream:
        final = stream.get_final_completion()
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == {"city": "sim"}


def test_tool_choice_none_answers_in_text(client):
    api, _ = client
    reply = api.chat.completions.create(model="m", messages=HELLO, tools=WEATHER, tool_choice="none")
    assert reply.choices[0].message.tool_calls is None


def test_models_list(client):
    api, name = client
    models = list(api.models.list())
    assert {m.id for m in models} == {"sim-small", "sim-large", "sim-embed"}
    assert {m.owned_by for m in models} == {name}


@pytest.mark.parametrize("encoding", ["base64", "float"])
def test_embeddings_in_both_encodings_are_deterministic(client, encoding):
    api, _ = client
    kwargs = {} if encoding == "base64" else {"encoding_format": "float"}  # the SDK asks for base64 by default
    first = api.embeddings.create(model="sim-embed", input=["alpha", "beta"], **kwargs)
    again = api.embeddings.create(model="sim-embed", input="alpha", dimensions=8, **kwargs)
    assert len(first.data) == 2 and len(first.data[0].embedding) == 8
    assert first.data[0].embedding == pytest.approx(again.data[0].embedding, abs=1e-6)
    assert first.data[0].embedding != first.data[1].embedding


def test_429_carries_retry_after_and_ratelimit_headers(sim):
    api = openai.OpenAI(base_url=sim.base_url("always-429"), api_key="k", max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        api.chat.completions.create(model="m", messages=HELLO)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "1" and headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "1s"
    assert caught.value.code == "rate_limit_exceeded" and "try again in 1s" in caught.value.message


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("500", openai.InternalServerError),
        ("503", openai.InternalServerError),
        ("401", openai.AuthenticationError),
        ("400", openai.BadRequestError),
        ("context_length", openai.BadRequestError),
    ],
)
def test_error_faults_raise_the_sdks_matching_exception(sim, client, fault, error):
    api, name = client
    sim.script(name, [{"type": fault}])
    with pytest.raises(error):
        api.chat.completions.create(model="m", messages=HELLO)


def test_a_missing_key_is_a_401(sim):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{sim.base_url('nokey')}/chat/completions", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 401


def test_a_cut_stream_makes_the_sdk_raise_instead_of_ending_cleanly(sim, client):
    api, name = client
    sim.script(name, [{"type": "cut_stream", "after_chunks": 2}])
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in api.chat.completions.create(model="m", messages=HELLO, stream=True):
            received.append(chunk)
    assert len(received) == 3  # the role chunk and two content chunks, then the connection drops


def test_malformed_json_makes_the_sdk_raise(sim, client):
    api, name = client
    sim.script(name, [{"type": "malformed_json"}])
    with pytest.raises(Exception) as caught:
        api.chat.completions.create(model="m", messages=HELLO)
    assert (
        "JSON" in type(caught.value).__name__
        or "json" in str(caught.value).lower()
        or isinstance(caught.value, openai.APIResponseValidationError)
    )


def test_slow_first_byte_trips_the_client_timeout(sim, client):
    _, name = client
    sim.script(name, [{"type": "slow_first_byte", "delay_s": 2}])
    api = openai.OpenAI(base_url=sim.base_url(name), api_key="k", max_retries=0, timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        api.chat.completions.create(model="m", messages=HELLO)


def test_faults_are_consumed_in_order_then_the_default_returns(sim, client):
    api, name = client
    sim.script(name, [{"type": "500", "count": 2}, {"type": "401"}])
    outcomes = []
    for _ in range(4):
        try:
            api.chat.completions.create(model="m", messages=HELLO)
            outcomes.append("ok")
        except openai.APIStatusError as error:
            outcomes.append(error.status_code)
    assert outcomes == [500, 500, 401, "ok"]


def test_the_request_log_keeps_the_exact_body_with_unknown_parameters(sim, client):
    api, name = client
    api.chat.completions.create(model="m", messages=HELLO, extra_body={"foo_unknown": 1}, seed=4)
    [logged] = sim.requests(name)
    assert logged["path"] == f"/{name}/v1/chat/completions"
    assert logged["body"]["foo_unknown"] == 1 and logged["body"]["seed"] == 4
    assert logged["headers"]["authorization"] == "Bearer sk-sim"


def test_bad_fault_scripts_are_refused(sim):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as caught:
        sim.script("x", [{"type": "explode"}])
    assert caught.value.code == 400
