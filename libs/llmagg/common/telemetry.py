"""OpenTelemetry tracing configured only by the standard OTEL_* variables.

Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set and
OTEL_SDK_DISABLED is not "true"; otherwise the API's no-op tracer is used and spans cost nothing.
OTEL_SERVICE_NAME overrides the service name; every other OTEL_* variable is read by the SDK.

Sampling: a request the gateway (or any caller) traced is traced by every service it reaches, one it
did not is not; a trace a service starts itself (a background refresh, a call made straight to it) is
kept at the ratio OTEL_TRACES_SAMPLER_ARG (0 to 1, default 1): ParentBased(TraceIdRatio), the same
setting in every service. OTEL_TRACES_SAMPLER names another of the standard samplers instead.

Under a parent-based sampler a span whose parent was not sampled is never sampled either, so for those
(nine in ten requests at a 10 % ratio) the tracers skip the SDK: the span is the parent's context as a
non-recording span, no sampler call, no new ids, no attributes kept.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased

# The SDK's own decorator for start_as_current_span: usable as `with`, and as a decorator of plain and async
# functions alike (contextlib's would end an async function's span before it ran).
from opentelemetry.util._decorator import _agnosticcontextmanager


def tracing_enabled() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def trace_ratio(environ: Mapping[str, str] = os.environ) -> float:
    """The share of the traces a service starts itself that are kept: OTEL_TRACES_SAMPLER_ARG, 1.0 unset."""
    text = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if not text:
        return 1.0
    try:
        ratio = float(text)
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, not {text!r}")
    return ratio


def trace_sampler(environ: Mapping[str, str] = os.environ) -> Sampler:
    """ParentBased(TraceIdRatio(OTEL_TRACES_SAMPLER_ARG)) unless OTEL_TRACES_SAMPLER names a standard sampler."""
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_traceidratio"
    samplers = {
        "always_on": lambda: ALWAYS_ON,
        "always_off": lambda: ALWAYS_OFF,
        "traceidratio": lambda: TraceIdRatioBased(trace_ratio(environ)),
        "parentbased_always_on": lambda: ParentBased(ALWAYS_ON),
        "parentbased_always_off": lambda: ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": lambda: ParentBased(TraceIdRatioBased(trace_ratio(environ))),
    }
    if name not in samplers:
        raise ValueError(f"OTEL_TRACES_SAMPLER must be one of {', '.join(samplers)}, not {name!r}")
    return samplers[name]()


class UnsampledParentShortcut(trace.Tracer):
    """A tracer under a parent-based sampler: a span whose parent is valid and unsampled is that parent
    as a non-recording span (the SDK would drop it too, after a sampler call and new ids); every other
    span is the SDK tracer's."""

    def __init__(self, sdk_tracer: trace.Tracer) -> None:
        self._sdk = sdk_tracer

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Any = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid and not parent.trace_flags.sampled:
            return trace.NonRecordingSpan(parent)
        return self._sdk.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Any = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        with trace.use_span(span, end_on_exit, record_exception, set_status_on_exception) as current:
            yield current


class ShortcutTracerProvider(TracerProvider):
    """The SDK's provider for a parent-based sampler, its tracers wrapped in UnsampledParentShortcut."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return UnsampledParentShortcut(super().get_tracer(*args, **kwargs))


def drops_under_unsampled_parents(sampler: Sampler) -> bool:
    """Whether `sampler` drops every span whose parent was not sampled (ParentBased, with its defaults for
    an unsampled parent, remote or local)."""
    return (
        isinstance(sampler, ParentBased)
        and getattr(sampler, "_remote_parent_not_sampled", None) is ALWAYS_OFF
        and getattr(sampler, "_local_parent_not_sampled", None) is ALWAYS_OFF
    )


def tracer_provider(resource: Resource, sampler: Sampler) -> TracerProvider:
    """The SDK's provider, with the shortcut when the sampler drops what an unsampled parent did not keep."""
    kind = ShortcutTracerProvider if drops_under_unsampled_parents(sampler) else TracerProvider
    return kind(resource=resource, sampler=sampler)


_DEFAULT_FIELDS = frozenset({"traceparent", "tracestate", "baggage"})  # W3C tracecontext and baggage
_VERSION_00 = re.compile("00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_INVALID_TRACE_ID, _INVALID_SPAN_ID = "0" * 32, "0" * 16  # all zeros: no parent, as the propagator reads them


@functools.lru_cache(maxsize=4)
def _default_propagation(textmap: Any) -> bool:
    return textmap.fields == _DEFAULT_FIELDS


def extract(headers: Mapping[str, str]) -> Context:
    """`propagate.extract(headers)`, read directly for the usual request: the default propagators, a
    version-00 `traceparent` (the gateway's), no `tracestate` value and no baggage. The general path builds
    the same context with a dozen more calls, ~20 µs of a request's path in the router. Any other request
    takes that path."""
    header = headers.get("traceparent")
    parsed = _VERSION_00.fullmatch(header) if isinstance(header, str) else None
    if (
        parsed is None
        or parsed[1] == _INVALID_TRACE_ID
        or parsed[2] == _INVALID_SPAN_ID
        or headers.get("tracestate")
        or "baggage" in headers
        or not _default_propagation(propagate.get_global_textmap())
    ):
        return propagate.extract(headers)
    trace_id, span_id, flags = int(parsed[1], 16), int(parsed[2], 16), int(parsed[3], 16)
    parent = trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(flags))
    return trace.set_span_in_context(trace.NonRecordingSpan(parent), Context())  # as the propagator: nothing else


def configure_tracing(service_name: str) -> bool:
    """Install a tracer provider exporting OTLP/gRPC; returns whether tracing is on."""
    if not tracing_enabled():
        return False
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import OTELResourceDetector
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)}).merge(
        OTELResourceDetector().detect()
    )
    provider = tracer_provider(resource, trace_sampler())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()
