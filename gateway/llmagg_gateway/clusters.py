"""One upstream cluster per service: HTTP/2, the gateway's token on every request, actively health-checked
over gRPC health (health checks need no token)."""

from __future__ import annotations

from llmagg_gateway.addresses import socket_address
from llmagg_gateway.limits import CONNECTION_BUFFER_BYTES
from llmagg_gateway.service_tokens import upstream_filters

# Envoy opens another connection to a service once each has this many streams: the kernel hands each
# connection to one of the processes sharing the port (ROUTER_WORKERS, SO_REUSEPORT), so under load the
# requests spread over them rather than riding the one connection per Envoy thread to one process.
STREAMS_PER_CONNECTION = 4


def service_cluster(name: str, host_port: str, grpc_service: str, tokens_dir: str) -> dict:
    return {
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "2s",
        "per_connection_buffer_limit_bytes": CONNECTION_BUFFER_BYTES,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {"max_concurrent_streams": STREAMS_PER_CONNECTION}},
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
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(host_port)}}]}],
        },
    }
