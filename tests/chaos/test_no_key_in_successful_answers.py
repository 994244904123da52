"""Promise 3 for answers that succeed: a provider that quotes its key in a normal answer (its text, split
across stream chunks, tool-call arguments, id, model, extra fields, embeddings) never shows it to a client,
whatever its protocol and auth style."""

from __future__ import annotations

import contextlib
import json

import openai
import pytest

from llmagg_devstack import SimulatorProcess

from .helpers import start_stack

# One provider per protocol and auth style, each with a key of its own in a shape no pattern recognises.
PROVIDERS = {  # id -> (protocol, base path, auth style, key)
    "echo-openai": ("openai", "/v1", "bearer", "Zq81FAKEmistralShaped0123456789ab"),
    "echo-claude": ("anthropic", "/v1", "x-api-key", "antFAKEkey_0123456789-abcdefghijklmnop"),
    "echo-gemini": ("gemini", "/v1beta", "x-goog-api-key", "gooFAKEkey0123456789abcdefghijklmnopq"),
    "echo-cohere": ("cohere", "/v2", "bearer", "cohFAKEkey0123456789ABCDEFGHIJKLMNOP"),
}
KEYS = {provider_id: key for provider_id, (*_, key) in PROVIDERS.items()}
HI = [{"role": "user", "content": "hi"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city now",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
REDACTED = "[redacted]"


@pytest.fixture(scope="module")
def echoing():
    with SimulatorProcess(dict.fromkeys(PROVIDERS, "echo_key")) as sim:
        yield sim


def config_of(sim: SimulatorProcess) -> list[dict]:
    providers = []
    for provider_id, (protocol, base_path, auth, _) in PROVIDERS.items():
        models = [{"id": "sim-small", "quality": 3, "context_window": 32768, "aliases": [provider_id]}]
        if protocol == "openai":
            models.append({"id": "sim-embed", "type": "embedding", "aliases": [f"{provider_id}-embed"]})
        providers.append({
            "id": provider_id, "protocol": protocol, "auth": auth, "speed": 3,
            "base_url": f"{sim.url}/{provider_id}{base_path}", "models": models,
        })  # fmt: skip
    return providers


@pytest.fixture(scope="module")
def stack(tmp_path_factory, echoing, make_stack):
    stack = start_stack(make_stack, tmp_path_factory.mktemp("echoing"), config_of(echoing), keys=KEYS)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def client(stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key="anonymous", max_retries=0, timeout=30)


def assert_no_key(text: str) -> None:
    for provider_id, key in KEYS.items():
        assert key not in text, f"{provider_id}'s key reached the client: {text}"


@pytest.mark.parametrize("provider_id", PROVIDERS)
def test_a_whole_answer_quoting_the_key_reaches_the_client_redacted(client, echoing, provider_id):
    echoing.reset(provider_id)
    raw = client.chat.completions.with_raw_response.create(model=provider_id, messages=HI)
    text = raw.http_response.text
    [sent] = echoing.requests(provider_id)
    assert KEYS[provider_id] in json.dumps(sent["headers"])  # the provider did get the key, and quoted it
    assert_no_key(text)
    assert raw.parse().choices[0].message.content == f"Your key is {REDACTED} indeed."


@pytest.mark.parametrize("provider_id", PROVIDERS)
def test_a_stream_quoting_the_key_in_every_chunk_and_across_two_reaches_the_client_redacted(client, provider_id):
    chunks = list(client.chat.completions.create(model=provider_id, messages=HI, stream=True))
    assert_no_key("\n".join(chunk.model_dump_json() for chunk in chunks))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == f"Your key is {REDACTED} indeed."


def _spelt(entries) -> tuple[str, str]:
    """What logprob entries spell: their tokens joined, and their bytes joined."""
    return "".join(e.token for e in entries), b"".join(bytes(e.bytes or []) for e in entries).decode()


def test_logprobs_spelling_the_key_token_by_token_reach_the_client_redacted(client):
    """The logprobs spell the text again, a token per entry (and its bytes), the key cut across two of them; each
    entry's first alternative is its own token."""
    asked = {"model": "echo-openai", "messages": HI, "logprobs": True, "top_logprobs": 2}
    whole = client.chat.completions.create(**asked)
    streamed = list(client.chat.completions.create(**asked, stream=True))
    entries = [e for chunk in streamed if chunk.choices and chunk.choices[0].logprobs
               for e in chunk.choices[0].logprobs.content or ()]  # fmt: skip
    expected = f"Your key is {REDACTED} indeed."
    assert _spelt(whole.choices[0].logprobs.content) == _spelt(entries) == (expected, expected)
    assert [e.token for e in entries] == ["Your", " key", " is", f" {REDACTED}", " indeed."]
    for listed in (whole.choices[0].logprobs.content, entries):
        for n in range(2):  # the chain of each entry's n-th alternative
            assert_no_key("".join(_spelt(e.top_logprobs[n : n + 1])[1] for e in listed))
    assert_no_key(whole.model_dump_json() + "\n".join(chunk.model_dump_json() for chunk in streamed))


@pytest.mark.parametrize("provider_id", PROVIDERS)
def test_tool_call_arguments_quoting_the_key_reach_the_client_redacted(client, provider_id):
    whole = client.chat.completions.create(model=provider_id, messages=HI, tools=[WEATHER])
    streamed = list(client.chat.completions.create(model=provider_id, messages=HI, tools=[WEATHER], stream=True))
    assert_no_key(whole.model_dump_json() + "\n".join(chunk.model_dump_json() for chunk in streamed))
    assert json.loads(whole.choices[0].message.tool_calls[0].function.arguments) == {"city": REDACTED}
    arguments = "".join(
        call.function.arguments or ""
        for chunk in streamed
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or ()
    )
    assert json.loads(arguments) == {"city": REDACTED}


def test_embeddings_quoting_the_key_reach_the_client_redacted(client):
    raw = client.embeddings.with_raw_response.create(model="echo-openai-embed", input="hello")
    assert_no_key(raw.http_response.text)
    assert raw.parse().model == f"sim-embed-{REDACTED}"


def test_no_log_holds_a_key_an_answer_quoted(client, stack):
    for provider_id in PROVIDERS:
        client.chat.completions.create(model=provider_id, messages=HI)
    with contextlib.suppress(Exception):
        stack.stop()  # flushes every log
    assert_no_key((stack.run_dir / "router.log").read_text())
    for process in stack.processes:
        assert_no_key(process.output())
