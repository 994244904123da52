"""The Anthropic, Gemini and Cohere adapters against the provider simulator: what goes on the wire,
what comes back in OpenAI's shapes, and which Failure each scripted fault maps to."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llmagg.common.secrets import Secret
from llmagg.registry import Account, Provider
from llmagg_devstack import SimulatorProcess
from llmagg_router.adapters.anthropic_messages import AnthropicDialect
from llmagg_router.adapters.cohere_chat import CohereDialect
from llmagg_router.adapters.gemini_generate import GeminiDialect
from llmagg_router.adapters.http_adapter import Dialect, HttpAdapter
from llmagg_router.adapters.http_upstream import HttpUpstream
from llmagg_router.domain.upstream import Candidate, Failure, Operation, UpstreamError

KEY = "sk-native-test-0123456789"
BODY = {"model": "sim-small", "messages": [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "echo: one two three"}]}  # fmt: skip
STREAM = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
WEATHER = {"type": "function", "function": {"name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip


@dataclass(frozen=True)
class Dialected:
    protocol: str
    dialect: Dialect
    base_path: str  # after /<name>
    auth: str
    chat_path: str  # after /<name>, non-stream
    stream_path: str
    stream_query: dict

    def key_sent(self, headers: dict) -> bool:
        if self.auth == "bearer":
            return headers.get("authorization") == f"Bearer {KEY}"
        return headers.get(self.auth) == KEY and "authorization" not in headers


ANTHROPIC = Dialected("anthropic", AnthropicDialect(), "/v1", "x-api-key", "/v1/messages", "/v1/messages", {})
GEMINI = Dialected(
    "gemini", GeminiDialect(), "/v1beta", "x-goog-api-key",
    "/v1beta/models/sim-small:generateContent", "/v1beta/models/sim-small:streamGenerateContent", {"alt": "sse"},
)  # fmt: skip
COHERE = Dialected("cohere", CohereDialect(), "/v2", "bearer", "/v2/chat", "/v2/chat", {})
DIALECTS = [pytest.param(d, id=d.protocol) for d in (ANTHROPIC, GEMINI, COHERE)]


@pytest.fixture(scope="module")
def sim():
    with SimulatorProcess() as simulator:
        yield simulator


@pytest.fixture
async def http():
    pool = HttpUpstream(connect_timeout_s=1, read_timeout_s=0.5)
    yield pool
    await pool.close()


@pytest.fixture
def provider(sim, request):
    """A fresh simulated provider per test: its own name, queue and request log."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[-60:].strip("-")
    sim.reset(name)
    return name


def candidate(sim, name: str, spec: Dialected) -> Candidate:
    base_url = f"{sim.url}/{name}{spec.base_path}"
    provider = Provider(id=name, name=name, protocol=spec.protocol, base_url=base_url, auth=spec.auth)
    return Candidate(provider, "sim-small", None, Account(name, f"{name}-1", base_url))


async def collect(adapter, target, body):
    async with adapter.stream(target, Secret(KEY), body) as chunks:
        return [chunk async for chunk in chunks]


def text(chunks) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.mark.parametrize("spec", DIALECTS)
async def test_a_chat_goes_to_the_dialects_endpoint_with_its_key_and_comes_back_as_a_completion(
    sim, http, provider, spec
):
    answer = await HttpAdapter(http, spec.dialect).request(
        candidate(sim, provider, spec), Secret(KEY), Operation.CHAT, BODY
    )
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "one two three"}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}
    [sent] = sim.requests(provider)
    assert (sent["method"], sent["path"], sent["query"]) == ("POST", f"/{provider}{spec.chat_path}", {})
    assert spec.key_sent(sent["headers"])
    if spec is ANTHROPIC:
        assert sent["headers"]["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize("spec", DIALECTS)
async def test_a_stream_comes_back_as_openai_chunks_with_usage(sim, http, provider, spec):
    chunks = await collect(HttpAdapter(http, spec.dialect), candidate(sim, provider, spec), STREAM)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"]["content"] for c in chunks[1:4]] == ["one", " two", " three"]
    assert chunks[4]["choices"][0]["finish_reason"] == "stop"
    assert chunks[5]["choices"] == [] and chunks[5]["usage"] == {
        "prompt_tokens": 6,
        "completion_tokens": 3,
        "total_tokens": 9,
    }
    assert len(chunks) == 6
    [sent] = sim.requests(provider)
    assert (sent["path"], sent["query"]) == (f"/{provider}{spec.stream_path}", spec.stream_query)


@pytest.mark.parametrize("spec", DIALECTS)
async def test_a_tool_call_streams_as_openai_tool_call_deltas(sim, http, provider, spec):
    chunks = await collect(
        HttpAdapter(http, spec.dialect), candidate(sim, provider, spec), {**STREAM, "tools": [WEATHER]}
    )
    calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert {call["index"] for call in calls} == {0}
    assert calls[0]["function"]["name"] == "get_weather" and calls[0]["id"]
    arguments = "".join(call["function"].get("arguments") or "" for call in calls)
    assert arguments.replace(" ", "") == '{"city":"sim"}'
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"


# Each fault, and the Failure it must come back as in each dialect (with the retry hint where there is one).
FAULTS = [
    ({"type": "429", "retry_after": 2.5}, Failure.RATE_LIMITED),
    ({"type": "503"}, Failure.SERVER),  # Anthropic: 529 overloaded_error
    ({"type": "500"}, Failure.SERVER),
    ({"type": "401"}, Failure.AUTH),  # Gemini: 400 with ErrorInfo API_KEY_INVALID
    ({"type": "400"}, Failure.CLIENT),
    ({"type": "context_length"}, Failure.CONTEXT_LENGTH),
    ({"type": "malformed_json"}, Failure.BAD_RESPONSE),
    ({"type": "cut_stream"}, Failure.BAD_RESPONSE),
    ({"type": "hang", "max_hang_s": 5}, Failure.TIMEOUT),
]
# Anthropic and Cohere round retry-after up to whole seconds; Gemini's message carries the exact wait.
RETRY_HINTS = {"anthropic": 3, "gemini": 2.5, "cohere": 3}


@pytest.mark.parametrize("spec", DIALECTS)
@pytest.mark.parametrize(("fault", "failure"), FAULTS, ids=[f["type"] for f, _ in FAULTS])
async def test_each_fault_maps_to_its_failure(sim, http, provider, spec, fault, failure):
    sim.script(provider, [fault])
    with pytest.raises(UpstreamError) as caught:
        await HttpAdapter(http, spec.dialect).request(candidate(sim, provider, spec), Secret(KEY), Operation.CHAT, BODY)
    error = caught.value
    assert error.failure is failure, error.message
    assert KEY not in error.message
    if failure is Failure.RATE_LIMITED:
        assert error.retry_after_s == RETRY_HINTS[spec.protocol]


@pytest.mark.parametrize("spec", DIALECTS)
@pytest.mark.parametrize(
    ("fault", "failure"),
    [("cut_stream", Failure.BAD_RESPONSE), ("stream_error", Failure.SERVER), ("malformed_json", Failure.BAD_RESPONSE)],
)
async def test_a_stream_broken_after_its_first_content_raises_while_iterating(
    sim, http, provider, spec, fault, failure
):
    sim.script(provider, [{"type": fault, "after_chunks": 1}])
    received = []
    with pytest.raises(UpstreamError) as caught:
        async with HttpAdapter(http, spec.dialect).stream(
            candidate(sim, provider, spec), Secret(KEY), STREAM
        ) as chunks:
            async for chunk in chunks:
                received.append(chunk)
    assert caught.value.failure is failure
    if fault != "malformed_json":  # a malformed first content event breaks the stream before any content
        assert text(received) == "one"


@pytest.mark.parametrize("spec", DIALECTS)
async def test_a_stream_refused_before_it_starts_raises_on_open(sim, http, provider, spec):
    sim.script(provider, [{"type": "429", "retry_after": 1}])
    with pytest.raises(UpstreamError) as caught:
        await collect(HttpAdapter(http, spec.dialect), candidate(sim, provider, spec), STREAM)
    assert caught.value.failure is Failure.RATE_LIMITED


@pytest.mark.parametrize("spec", DIALECTS)
async def test_what_the_protocol_cannot_express_is_never_sent(sim, http, provider, spec):
    adapter = HttpAdapter(http, spec.dialect)
    with pytest.raises(UpstreamError) as caught:
        await adapter.request(candidate(sim, provider, spec), Secret(KEY), Operation.CHAT, {**BODY, "n": 2})
    assert caught.value.failure is Failure.UNSUPPORTED
    with pytest.raises(UpstreamError) as caught:
        await adapter.request(candidate(sim, provider, spec), Secret(KEY), Operation.EMBEDDINGS, {"input": "x"})
    assert caught.value.failure is Failure.UNSUPPORTED
    assert sim.requests(provider) == []
