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


@pytest.mark.parametrize("sampled", [True, False])
async def test_an_attempts_span_is_current_for_its_upstream_call_only_when_it_is_kept(
    make_router, upstream, monkeypatch, sampled
):
    """A traced request's upstream call runs under its attempt's span; an untraced one's in the request's
    own context, unchanged (the attempt's span would be that context again, and nothing under it is kept)."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource

    from llmagg.common.telemetry import trace_sampler, tracer_provider
    from llmagg_router.domain import attempt

    exporter = InMemorySpanExporter()
    provider = tracer_provider(Resource.create({}), trace_sampler({}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(attempt, "tracer", provider.get_tracer("llmagg.router"))
    flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT)
    request_span = trace.NonRecordingSpan(trace.SpanContext(7, 9, is_remote=True, trace_flags=flags))
    current: list[trace.Span] = []
    calls = upstream._next
    monkeypatch.setattr(upstream, "_next", lambda *args: (current.append(trace.get_current_span()), calls(*args))[1])
    token = otel_context.attach(trace.set_span_in_context(request_span))
    try:
        await make_router().complete({**CHAT_BODY, "model": "fast/llama-8b"})
    finally:
        otel_context.detach(token)
    if sampled:
        [kept] = exporter.get_finished_spans()
        assert current[0].get_span_context() == kept.context and kept.parent.span_id == 9
    else:
        assert current == [request_span] and exporter.get_finished_spans() == ()
