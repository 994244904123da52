"""Prompts and answers reach the request's span only when the operator opted in (ROUTER_TRACE_CONTENT)."""

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .helpers import CHAT_BODY, content_chunks

ASKED = [{"role": "user", "content": "hi"}]


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    def request_span():
        return tracer.start_as_current_span("llmagg.router.v1.RouterService/CreateChatCompletion")

    request_span.finished = exporter.get_finished_spans
    return request_span


async def test_off_by_default_no_message_reaches_the_span(make_router, spans):
    with spans():
        await make_router().complete({**CHAT_BODY, "model": "fast/llama-8b"})
    [span] = spans.finished()
    assert "gen_ai.input.messages" not in span.attributes and "gen_ai.output.messages" not in span.attributes
    assert span.attributes["gen_ai.provider.name"] == "fast"


async def test_opted_in_the_span_holds_the_messages_asked_and_answered(make_router, upstream, spans):
    upstream.on("fast", content_chunks("all", " fine"))
    with spans():
        await make_router(trace_content=True).complete({**CHAT_BODY, "model": "fast/llama-8b"})
    [span] = spans.finished()
    assert json.loads(span.attributes["gen_ai.input.messages"]) == ASKED
    assert json.loads(span.attributes["gen_ai.output.messages"]) == [{"role": "assistant", "content": "all fine"}]


async def test_opted_in_a_stream_records_its_whole_answer_when_it_ends(make_router, upstream, spans):
    upstream.on("fast", content_chunks("one", " two"))
    with spans():
        stream = await make_router(trace_content=True).open_stream({**CHAT_BODY, "model": "fast/llama-8b"})
        assert [c async for c in stream]
    [span] = spans.finished()
    assert json.loads(span.attributes["gen_ai.input.messages"]) == ASKED
    assert json.loads(span.attributes["gen_ai.output.messages"]) == [{"role": "assistant", "content": "one two"}]
