"""OpenTelemetry tracing configured only by the standard OTEL_* variables.

Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set and
OTEL_SDK_DISABLED is not "true"; otherwise the API's no-op tracer is used and spans cost nothing.
OTEL_SERVICE_NAME overrides the service name; every other OTEL_* variable is read by the SDK.

Sampling: a request the gateway (or any caller) traced is traced by every service it reaches, one it
did not is not; a trace a service starts itself (a background refresh, a call made straight to it) is
kept at the ratio OTEL_TRACES_SAMPLER_ARG (0 to 1, default 1): ParentBased(TraceIdRatio), the same
setting in every service. OTEL_TRACES_SAMPLER names another of the standard samplers instead.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased


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


def configure_tracing(service_name: str) -> bool:
    """Install a tracer provider exporting OTLP/gRPC; returns whether tracing is on."""
    if not tracing_enabled():
        return False
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)}).merge(
        OTELResourceDetector().detect()
    )
    provider = TracerProvider(resource=resource, sampler=trace_sampler())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()
