"""The services' sampler: ParentBased(TraceIdRatio) with the ratio OTEL_TRACES_SAMPLER_ARG (1.0 unset)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision

from llmagg.common.telemetry import trace_sampler

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
