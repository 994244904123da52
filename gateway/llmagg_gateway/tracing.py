"""Envoy's OpenTelemetry tracer: every request gets a gateway span, the first of its trace.

Envoy continues a client's W3C `traceparent` and passes its own span on to the services, so the
trace runs from the edge through every service and attempt.
"""

from __future__ import annotations

from llmagg_gateway.addresses import socket_address

OTLP_CLUSTER = "otlp"


def tracing() -> dict:
    """The connection manager's `tracing` block: sample everything, export to the OTLP cluster."""
    return {
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "1s"},
                "service_name": "gateway",
            },
        },
        "random_sampling": {"value": 100},
        "spawn_upstream_span": False,
    }


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
