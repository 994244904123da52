"""The services' sampler: ParentBased(TraceIdRatio) with the ratio OTEL_TRACES_SAMPLER_ARG (1.0 unset), and
their tracers' shortcut for spans under an unsampled parent."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from llmagg.common.telemetry import trace_sampler, tracer_provider

SAMPLED_PARENT = trace.set_span_in_context(
    trace.NonRecordingSpan(
        trace.SpanContext(1, 2, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    )
)
UNSAMPLED_PARENT = trace.set_span_in_context(
    trace.NonRecordingSpan(
        trace.SpanContext(1, 2, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT))
    )
)
TRACE_IDS = range(1, 2**64, 2**58)  # spread over the low 64 bits, which a ratio sampler compares


def roots_sampled(environ: dict[str, str]) -> int:
    sampler = trace_sampler(environ)
    return sum(sampler.should_sample(None, (1 << 64) | trace_id, "rpc").decision == Decision.RECORD_AND_SAMPLE
               for trace_id in TRACE_IDS)  # fmt: skip


def test_unset_every_root_is_sampled_and_the_parents_decision_is_followed():
    sampler = trace_sampler({})
    assert roots_sampled({}) == len(TRACE_IDS)
    assert sampler.should_sample(SAMPLED_PARENT, 1, "rpc").decision == Decision.RECORD_AND_SAMPLE
    assert sampler.should_sample(UNSAMPLED_PARENT, 1, "rpc").decision == Decision.DROP


def test_at_ratio_zero_no_root_is_sampled_but_a_sampled_parents_children_are():
    environ = {"OTEL_TRACES_SAMPLER_ARG": "0"}
    assert roots_sampled(environ) == 0
    assert trace_sampler(environ).should_sample(SAMPLED_PARENT, 1, "rpc").decision == Decision.RECORD_AND_SAMPLE
    assert trace_sampler(environ).should_sample(UNSAMPLED_PARENT, 1, "rpc").decision == Decision.DROP


def test_a_ratio_samples_that_share_of_roots():
    assert roots_sampled({"OTEL_TRACES_SAMPLER_ARG": "0.25"}) == len(TRACE_IDS) // 4


def test_a_sampler_the_operator_names_is_the_sdks():
    environ = {"OTEL_TRACES_SAMPLER": "always_off", "OTEL_TRACES_SAMPLER_ARG": "1"}
    assert trace_sampler(environ).get_description() == "AlwaysOffSampler"


@pytest.mark.parametrize("value", ["ten percent", "1.5", "-0.1", "nan"])
def test_a_ratio_that_is_not_one_is_refused_by_name(value):
    with pytest.raises(ValueError, match=f"OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, not '{value}'"):
        trace_sampler({"OTEL_TRACES_SAMPLER_ARG": value})


def traced(sampler_environ: dict[str, str]) -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = tracer_provider(Resource.create({"service.name": "test"}), trace_sampler(sampler_environ))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_a_span_under_an_unsampled_parent_is_that_parent_unrecorded_and_carries_its_decision_on():
    tracer, exporter = traced({"OTEL_TRACES_SAMPLER_ARG": "0.1"})
    parent = trace.get_current_span(UNSAMPLED_PARENT).get_span_context()
    span = tracer.start_span("request", context=UNSAMPLED_PARENT, attributes={"a": 1})
    assert span.get_span_context() == parent and not span.is_recording()
    span.end()
    with tracer.start_as_current_span("attempt", context=UNSAMPLED_PARENT) as current:
        assert trace.get_current_span() is current and current.get_span_context() == parent
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
    assert carrier["traceparent"] == f"00-{1:032x}-{2:016x}-00"  # the next service drops it too
    assert exporter.get_finished_spans() == ()


def test_a_span_under_a_sampled_parent_and_a_root_are_the_sdks_recorded_ones():
    tracer, exporter = traced({"OTEL_TRACES_SAMPLER_ARG": "1"})
    with tracer.start_as_current_span("child", context=SAMPLED_PARENT) as child:
        assert child.is_recording() and child.get_span_context().span_id != 2
    tracer.start_span("root").end()
    child_span, root = exporter.get_finished_spans()
    assert (child_span.name, child_span.context.trace_id, child_span.parent.span_id) == ("child", 1, 2)
    assert root.name == "root" and root.parent is None and root.context.trace_id != 1


def test_a_sampler_that_does_not_follow_the_parent_decides_under_an_unsampled_parent_too():
    tracer, exporter = traced({"OTEL_TRACES_SAMPLER": "always_on"})
    with tracer.start_as_current_span("child", context=UNSAMPLED_PARENT) as child:
        assert child.is_recording()
    assert [span.name for span in exporter.get_finished_spans()] == ["child"]


def test_under_an_unsampled_parent_the_spans_within_spans_are_the_parent_too():
    tracer, exporter = traced({"OTEL_TRACES_SAMPLER_ARG": "1"})
    parent = trace.get_current_span(UNSAMPLED_PARENT).get_span_context()
    with tracer.start_as_current_span("request", context=UNSAMPLED_PARENT):
        with tracer.start_as_current_span("attempt") as attempt:  # its parent is local now
            assert attempt.get_span_context() == parent and not attempt.is_recording()
    assert exporter.get_finished_spans() == ()


def test_as_a_decorator_of_an_async_function_the_span_is_current_while_it_runs_and_ends_after():
    tracer, exporter = traced({"OTEL_TRACES_SAMPLER_ARG": "1"})

    @tracer.start_as_current_span("job")
    async def job() -> trace.Span:
        await asyncio.sleep(0)
        assert exporter.get_finished_spans() == ()  # not ended before the function ran
        return trace.get_current_span()

    current = asyncio.run(job())
    [span] = exporter.get_finished_spans()
    assert span.name == "job" and current.get_span_context() == span.context


def test_a_parent_based_sampler_that_keeps_some_children_of_unsampled_parents_decides_for_them():
    exporter = InMemorySpanExporter()
    sampler = ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)
    provider = tracer_provider(Resource.create({"service.name": "test"}), sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("test").start_span("child", context=UNSAMPLED_PARENT).end()
    assert [span.name for span in exporter.get_finished_spans()] == ["child"]


TRACE = "0af7651916cd43dd8448eb211c80319c"
HEADER_CASES = [
    {"traceparent": f"00-{TRACE}-b7ad6b7169203331-00", "tracestate": ""},  # the gateway's, unsampled
    {"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"},
    {"traceparent": f"00-{TRACE}-b7ad6b7169203331-03", "tracestate": "vendor=1,other=two"},
    {"traceparent": f"00-{TRACE}-b7ad6b7169203331-01", "baggage": "user=alice"},
    {"traceparent": f"00-{TRACE.upper()}-b7ad6b7169203331-01"},
    {"traceparent": f"00-{'0' * 32}-b7ad6b7169203331-01"},
    {"traceparent": f"00-{TRACE}-{'0' * 16}-01"},
    {"traceparent": f"00-{TRACE}-b7ad6b7169203331-01-extra"},
    {"traceparent": f"01-{TRACE}-b7ad6b7169203331-01-future"},
    {"traceparent": f"ff-{TRACE}-b7ad6b7169203331-01"},
    {"traceparent": f" 00-{TRACE}-b7ad6b7169203331-01 "},
    {"traceparent": "00-0af7-b7ad-01"},
    {"traceparent": ""},
    {},
]


@pytest.mark.parametrize("headers", HEADER_CASES)
def test_a_requests_trace_headers_give_the_context_the_standard_propagators_give(headers):
    from opentelemetry import baggage, propagate
    from opentelemetry import context as otel_context

    from llmagg.common.telemetry import extract

    token = otel_context.attach(baggage.set_baggage("tenant", "another request's"))  # not carried over
    try:
        ours, standard = extract(headers), propagate.extract(headers)
    finally:
        otel_context.detach(token)
    assert trace.get_current_span(ours).get_span_context() == trace.get_current_span(standard).get_span_context()
    assert baggage.get_all(ours) == baggage.get_all(standard)


def test_the_gateways_trace_header_is_read_without_the_general_propagators(monkeypatch):
    from opentelemetry import propagate

    from llmagg.common.telemetry import extract

    monkeypatch.setattr(propagate, "extract", lambda *args: pytest.fail("took the general path"))
    parent = trace.get_current_span(extract(HEADER_CASES[0])).get_span_context()
    assert (parent.trace_id, parent.span_id, parent.trace_flags, parent.is_remote) == (
        int(TRACE, 16),
        0xB7AD6B7169203331,
        0,
        True,
    )
