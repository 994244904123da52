"""One upstream cluster per service: HTTP/2, the gateway's token on every request, actively health-checked
over gRPC health (health checks need no token). A cluster has one endpoint per address given (replicas on
loopback; a headless Service's DNS name in Kubernetes gives every pod behind one address)."""

from __future__ import annotations

from collections.abc import Sequence

from llmagg_gateway.addresses import socket_address
from llmagg_gateway.limits import CONNECTION_BUFFER_BYTES
from llmagg_gateway.service_tokens import upstream_filters


def service_cluster(name: str, host_ports: Sequence[str], grpc_service: str, tokens_dir: str) -> dict:
    return {
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "2s",
        "per_connection_buffer_limit_bytes": CONNECTION_BUFFER_BYTES,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
                "http_filters": upstream_filters(name, tokens_dir),
            }
        },
        "circuit_breakers": {
            "thresholds": [{"max_connections": 10000, "max_pending_requests": 10000, "max_requests": 10000}]
        },
        # A single replica that is draining (NOT_SERVING) must get no traffic: no panic routing.
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "health_checks": [
            {
                "timeout": "1s",
                "interval": "1s",
                "no_traffic_interval": "1s",
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "grpc_health_check": {"service_name": grpc_service},
            }
        ],
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": socket_address(host_port)}} for host_port in host_ports]}
            ],
        },
    }
