"""The key an attempt sent never comes back out of its provider's answer: whole answers, every stream event,
and the text a client joins from chunks (a key cut in two across them), without losing or delaying other text."""

from __future__ import annotations

import contextlib
import json

import aiohttp.test_utils
import aiohttp.web
import orjson
import pytest

from llmagg.common.secrets import Secret
from llmagg.registry import Account, Provider
from llmagg_router.adapters.anthropic_messages import AnthropicDialect
from llmagg_router.adapters.http_adapter import HttpAdapter
from llmagg_router.adapters.http_upstream import HttpUpstream
from llmagg_router.adapters.openai_http import OpenAIDialect
from llmagg_router.domain.key_redaction import KeyRedactor
from llmagg_router.domain.upstream import Candidate, Failure, Operation, UpstreamError

KEY = "sk-redact-test-0123456789"
REDACTED = "[redacted]"


def content(text: str, finish: str | None = None, index: int = 0) -> dict:
    return {
        "id": "c1",
        "model": "m",
        "choices": [{"index": index, "delta": {"content": text}, "finish_reason": finish}],
    }


def arguments(text: str) -> dict:
    call = {"index": 0, "function": {"arguments": text}}
    return {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}


def joined(chunks: list[dict], *path: str | int) -> str:
    text = ""
    for chunk in chunks:
        for choice in chunk["choices"]:
            value = choice["delta"]
            for step in path:
                value = value.get(step) if isinstance(value, dict) else (value[step] if value else None)
                if value is None:
                    break
            text += value or ""
    return text


def passed_on(*chunks: dict) -> list[dict]:
    stream = KeyRedactor([KEY]).stream()
    out = [passed for chunk in chunks for passed in stream.chunk(chunk)]
    return out + stream.flush()


# --- whole JSON documents -----------------------------------------------------------------------------


def test_a_document_without_the_key_is_passed_on_as_it_is():
    raw = orjson.dumps(content("hello"))
    assert KeyRedactor([KEY]).json(raw) is raw


def test_the_key_is_redacted_from_every_field_of_a_document():
    raw = orjson.dumps({"id": f"x-{KEY}", "choices": [{"message": {"content": f"key {KEY}!"}}], "extra": [KEY]})
    assert orjson.loads(KeyRedactor([KEY]).json(raw)) == {
        "id": f"x-{REDACTED}",
        "choices": [{"message": {"content": f"key {REDACTED}!"}}],
        "extra": [REDACTED],
    }


def test_a_key_spelt_with_json_escapes_is_redacted_too():
    escaped = "".join(f"\\u{ord(c):04x}" for c in KEY[:3]) + KEY[3:]
    raw = b'{"content": "key ' + escaped.encode() + b' \\u00e9t\\u00e9"}'
    assert orjson.loads(KeyRedactor([KEY]).json(raw)) == {"content": f"key {REDACTED} \u00e9t\u00e9"}


def test_a_document_that_cannot_be_read_or_written_again_is_left_for_the_parser_to_refuse():
    deep = b'{"a": ' + b"[" * 300 + b'"\\u0073"' + b"]" * 300 + b"}"
    assert KeyRedactor([KEY]).json(deep) is deep
    broken = b'{"a": "\\u0073k'
    assert KeyRedactor([KEY]).json(broken) is broken


def test_values_too_short_to_be_keys_are_left_alone():
    raw = b'{"content": "the word short"}'
    assert KeyRedactor(["short"]).json(raw) is raw


# --- streams ------------------------------------------------------------------------------------------


def test_a_key_cut_in_two_across_chunks_is_redacted_and_nothing_else_is_lost():
    out = passed_on(content("Your key is sk-red"), content("act-test-0123456789 indeed."), content("", "stop"))
    assert joined(out, "content") == f"Your key is {REDACTED} indeed."
    assert not any(KEY[:6] in json.dumps(chunk) for chunk in out)


def test_only_the_end_that_could_start_a_key_is_held_back_and_only_until_the_next_chunk():
    stream = KeyRedactor([KEY]).stream()
    [first] = stream.chunk(content("Hello there, sk-re"))
    assert first["choices"][0]["delta"]["content"] == "Hello there, "
    [second] = stream.chunk(content("ady? yep"))  # not the key after all: the held text comes first
    assert second["choices"][0]["delta"]["content"] == "sk-ready? yep"
    [third] = stream.chunk(content("plain text"))  # nothing that could start the key: passed on whole, now
    assert third["choices"][0]["delta"]["content"] == "plain text"


def test_the_longest_end_that_could_start_a_key_is_held():
    stream = KeyRedactor(["abcabd-0123"]).stream()
    [chunk] = stream.chunk(content("xxabcab"))
    assert chunk["choices"][0]["delta"]["content"] == "xx"
    [chunk] = stream.chunk(content("d-0123 ok"))
    assert chunk["choices"][0]["delta"]["content"] == f"{REDACTED} ok"


def test_held_text_goes_before_the_finishing_chunk_that_does_not_continue_it():
    finishing = {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    out = passed_on(content("it ends with s"), finishing)
    assert [joined([chunk], "content") for chunk in out] == ["it ends with ", "s", ""]
    assert out[1]["id"] == "c1" and out[2]["choices"][0]["finish_reason"] == "stop"
    # A finishing chunk that continues the text carries what was held itself.
    out = passed_on(content("it ends with s"), content("", "stop"))
    assert [joined([chunk], "content") for chunk in out] == ["it ends with ", "s"]


def test_a_finishing_chunk_with_text_holds_nothing_back():
    out = passed_on(content("last words s", "stop"))
    assert [joined([chunk], "content") for chunk in out] == ["last words s"]


def test_held_text_goes_before_a_usage_chunk_and_at_the_end():
    usage = {"id": "c1", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    out = passed_on(content("a s"), usage)
    assert [joined([chunk], "content") for chunk in out] == ["a ", "s", ""]
    assert passed_on(content("a sk-r"))[-1]["choices"] == [
        {"index": 0, "delta": {"content": "sk-r"}, "finish_reason": None}
    ]


def test_a_key_cut_across_tool_call_argument_chunks_is_redacted():
    out = passed_on(arguments('{"city": "sk-redact-'), arguments('test-0123456789"}'), content("", "tool_calls"))
    assert json.loads(joined(out, "tool_calls", 0, "function", "arguments")) == {"city": REDACTED}


def test_held_tool_call_arguments_are_flushed_in_their_own_shape():
    out = passed_on(arguments('{"city": "s'))
    assert out[-1]["choices"][0]["delta"] == {"tool_calls": [{"index": 0, "function": {"arguments": "s"}}]}


def call(name: str | None = None, args: str | None = None, finish: str | None = None) -> dict:
    function = {k: v for k, v in (("name", name), ("arguments", args)) if v is not None}
    delta = {"tool_calls": [{"index": 0, "function": function}]}
    return {"id": "c1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def names(chunks: list[dict]) -> list[str]:
    """Each tool-call name piece as passed on (a client that takes a name whole needs it in one piece)."""
    found = []
    for chunk in chunks:
        for choice in chunk["choices"]:
            for entry in choice["delta"].get("tool_calls") or ():
                if "name" in entry.get("function", {}):
                    found.append(entry["function"]["name"])
    return found


def test_a_key_cut_across_tool_call_name_chunks_is_redacted():
    out = passed_on(
        call(name="get_sk-redact-"), call(name="test-0123456789"), call(args="{}"), content("", "tool_calls")
    )
    assert names(out) == [f"get_{REDACTED}"]


def test_a_name_that_could_start_a_key_goes_on_whole_with_the_next_piece_of_its_call():
    out = passed_on(call(name="list_files"), call(args='{"path": "."}'), content("", "tool_calls"))
    assert names(out) == ["list_files"]
    assert joined(out, "tool_calls", 0, "function", "arguments") == '{"path": "."}'
    # The call's first chunk (its id and type) goes on at once; its name with the call's next piece.
    assert [c["choices"][0]["delta"]["tool_calls"][0]["function"] for c in out[:2]] == [
        {},
        {"arguments": '{"path": "."}', "name": "list_files"},
    ]


def test_a_name_that_cannot_start_a_key_is_not_held():
    out = passed_on(call(name="get_weather"), call(args="{}"))
    assert out[0]["choices"][0]["delta"]["tool_calls"][0]["function"] == {"name": "get_weather"}


def test_choices_hold_their_text_apart():
    out = passed_on(content("one sk-redact", index=0), content("two", index=1), content("-test-0123456789", index=0))
    assert joined([c for c in out if c["choices"][0]["index"] == 0], "content") == f"one {REDACTED}"


# --- through the adapter ------------------------------------------------------------------------------


def sse(chunk: dict) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


@pytest.fixture
async def echoing_upstream():
    """An OpenAI upstream that quotes the key it got: whole, in every event, cut in two across two events,
    then (for `cut` in the model name) the connection drops."""

    async def answer(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        key = request.headers["Authorization"].removeprefix("Bearer ")
        body = await request.json()
        if not body.get("stream"):
            return aiohttp.web.json_response({"id": key, "choices": [{"message": {"content": key}}], "x": key})
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(sse({**content(f"whole {key}, cut {key[:5]}"), "x": key}))
        await response.write(sse(content(f"{key[5:]}, and s")))
        if body["model"] == "cut":
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(sse(content("", "stop")) + b"data: [DONE]\n\n")
        return response

    async with serving(answer, "/v1/chat/completions", OpenAIDialect(), "openai") as (adapter, target):
        yield adapter, target


@contextlib.asynccontextmanager
async def serving(answer, path: str, dialect, protocol: str):
    """An upstream answering `path` with `answer`, and an adapter of `dialect` aimed at it."""
    app = aiohttp.web.Application()
    app.router.add_post(path, answer)
    server = aiohttp.test_utils.TestServer(app, host="127.0.0.1")
    await server.start_server()
    adapter = HttpAdapter(HttpUpstream(connect_timeout_s=1, read_timeout_s=2), dialect)
    provider = Provider(id="echo", name="echo", protocol=protocol, base_url=str(server.make_url("/v1")))
    try:
        yield adapter, Candidate(provider, "m", None, Account("echo", "echo-1", provider.base_url))
    finally:
        await adapter.close()
        await server.close()


async def test_a_whole_answer_quoting_the_key_comes_back_without_it(echoing_upstream):
    adapter, target = echoing_upstream
    answer = await adapter.request(target, Secret(KEY), Operation.CHAT, {"model": "m", "messages": []})
    assert dict(answer) == {"id": REDACTED, "choices": [{"message": {"content": REDACTED}}], "x": REDACTED}


async def test_a_stream_quoting_the_key_whole_and_cut_comes_back_without_it(echoing_upstream):
    adapter, target = echoing_upstream
    async with adapter.stream(target, Secret(KEY), {"model": "m", "stream": True}) as events:
        chunks = [chunk async for chunk in events]
    assert KEY[:5] not in json.dumps(chunks)
    assert joined(chunks, "content") == f"whole {REDACTED}, cut {REDACTED}, and s"
    assert chunks[0]["x"] == REDACTED


async def test_text_held_back_reaches_the_client_before_the_error_of_a_cut(echoing_upstream):
    adapter, target = echoing_upstream
    received = []
    with pytest.raises(UpstreamError) as caught:
        async with adapter.stream(target, Secret(KEY), {"model": "cut", "stream": True}) as events:
            async for chunk in events:
                received.append(chunk)
    assert caught.value.failure is Failure.BAD_RESPONSE
    assert joined(received, "content") == f"whole {REDACTED}, cut {REDACTED}, and s"


def test_hostile_chunk_shapes_pass_through_without_breaking_the_stream():
    odd = {"id": "c1", "choices": [{"index": [1], "delta": {"content": "x s"}}, "not a choice"], "usage": None}
    out = passed_on(odd, {"choices": None}, content(KEY))
    assert out[0]["choices"][0]["delta"] == {"content": "x "}
    assert out[1]["choices"] == [{"index": 0, "delta": {"content": "s"}, "finish_reason": None}]  # before `None`
    assert out[2] == {"choices": None} and joined([out[3]], "content") == REDACTED


async def test_a_key_cut_across_text_blocks_a_dialect_joins_comes_back_without_it():
    """Anthropic, Gemini and Cohere answers carry text in blocks the router joins into one `content`: a key
    cut in two across two blocks is whole only after the join."""

    async def answer(request: aiohttp.web.Request) -> aiohttp.web.Response:
        key = request.headers["Authorization"].removeprefix("Bearer ")
        blocks = [{"type": "text", "text": f"cut {key[:5]}"}, {"type": "text", "text": f"{key[5:]} end"}]
        return aiohttp.web.json_response({"id": "msg", "model": "m", "content": blocks, "stop_reason": "end_turn"})

    async with serving(answer, "/v1/messages", AnthropicDialect(), "anthropic") as (adapter, target):
        answered = await adapter.request(target, Secret(KEY), Operation.CHAT, {"model": "m", "messages": []})
    assert answered["choices"][0]["message"]["content"] == f"cut {REDACTED} end"
