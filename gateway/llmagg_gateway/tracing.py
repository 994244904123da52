"""Envoy's OpenTelemetry tracer: every request gets a gateway span, the first of its trace.

Envoy continues a client's W3C `traceparent` and passes its own span on to the services, so the
trace runs from the edge through every service and attempt. Envoy decides for every request:
`random_sampling` percent of them are traced, whatever the sampled flag of a caller's `traceparent`
(its trace id is kept; `x-client-trace-id` forces a trace), and the `traceparent` Envoy passes on
tells the services, which follow it (ParentBased, llmagg.common.telemetry).

Envoy's exporter sends a span batch when it holds `min_flush_spans`, else every `flush_interval_ms`
(runtime keys of the OpenTelemetry tracer; Envoy's defaults are 5 spans and 5 s: an export RPC per
few requests under load).
"""

from __future__ import annotations

from llmagg_gateway.addresses import socket_address

OTLP_CLUSTER = "otlp"
FLUSH_MIN_SPANS = 64
FLUSH_INTERVAL_MS = 1000  # a quiet gateway's spans still reach the collector within a second


def tracing(sampling_percent: float = 100.0) -> dict:
    """The connection manager's `tracing` block: trace `sampling_percent` of requests, export to the OTLP cluster."""
    return {
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "1s"},
                "service_name": "gateway",
            },
        },
        "random_sampling": {"value": sampling_percent},
        "spawn_upstream_span": False,
    }


def tracing_runtime() -> dict:
    """The bootstrap's `layered_runtime`: the OpenTelemetry exporter's batching."""
    flush = {
        "tracing.opentelemetry.min_flush_spans": FLUSH_MIN_SPANS,
        "tracing.opentelemetry.flush_interval_ms": FLUSH_INTERVAL_MS,
    }
    return {"layers": [{"name": "tracing", "static_layer": flush}]}


def otlp_cluster(host_port: str) -> dict:
    """Where spans go: an OTLP/gRPC collector."""
    return {
        "name": OTLP_CLUSTER,
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": OTLP_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(host_port)}}]}],
        },
    }
