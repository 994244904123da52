"""One upstream cluster per service: HTTP/2, the gateway's token on every request, actively health-checked
over gRPC health (health checks need no token). A cluster has one endpoint per address given (replicas on
loopback; a headless Service's DNS name in Kubernetes gives every pod behind one address)."""

from __future__ import annotations

from collections.abc import Sequence

from llmagg_gateway.addresses import socket_address
from llmagg_gateway.limits import CONNECTION_BUFFER_BYTES
from llmagg_gateway.service_tokens import upstream_filters

# Envoy opens another connection to a service once each has this many streams: the kernel hands each
# connection to one of the processes sharing the port (ROUTER_WORKERS, SO_REUSEPORT), so under load the
# requests spread over them rather than riding the one connection per Envoy thread to one process.
STREAMS_PER_CONNECTION = 4


def service_cluster(name: str, host_ports: Sequence[str], grpc_service: str, tokens_dir: str) -> dict:
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
        # A replica that refuses a connection is gone (killed, crashed): taken out at once, not after the
        # health checks' two misses (~2 s, in which every other request would go to it and fail); the
        # health checks bring it back. Its answers (a router's 5xx for a provider's failure) eject nothing.
        "outlier_detection": {
            "split_external_local_origin_errors": True,
            "consecutive_local_origin_failure": 1,
            "enforcing_consecutive_local_origin_failure": 100,
            "enforcing_consecutive_5xx": 0,
            "enforcing_consecutive_gateway_failure": 0,
            "enforcing_success_rate": 0,
            "enforcing_local_origin_success_rate": 0,
            "enforcing_failure_percentage": 0,
            "enforcing_failure_percentage_local_origin": 0,
            "base_ejection_time": "1s",
            # Never the only replica left: half of one host is none (always_eject_one_host stays off).
            "max_ejection_percent": 50,
        },
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
