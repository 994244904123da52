"""One upstream cluster per service: HTTP/2, the gateway's token on every request, actively health-checked
over gRPC health (health checks need no token). A cluster has one endpoint per address given (replicas on
loopback; a headless Service's DNS name in Kubernetes gives every pod behind one address). A service with
an HTTP data path (the router's OpenAI REST port) has a second cluster for it, alike but for HTTP/1.1."""

from __future__ import annotations

from collections.abc import Sequence

from llmagg.common.http_server import IDLE_TIMEOUT_S
from llmagg_gateway.addresses import socket_address
from llmagg_gateway.limits import CONNECTION_BUFFER_BYTES
from llmagg_gateway.service_tokens import upstream_filters

# Envoy opens another connection to a service once each has this many streams: the kernel hands each
# connection to one of the processes sharing the port (ROUTER_WORKERS, SO_REUSEPORT), so under load the
# requests spread over them rather than riding the one connection per Envoy thread to one process.
STREAMS_PER_CONNECTION = 4


def http_cluster_name(service: str) -> str:
    """The cluster of a service's OpenAI REST data path (HTTP/1.1): the router's is `router-http`."""
    return f"{service}-http"


def service_cluster(name: str, host_ports: Sequence[str], grpc_service: str, tokens_dir: str) -> dict:
    protocol = {"http2_protocol_options": {"max_concurrent_streams": STREAMS_PER_CONNECTION}}
    endpoints = [{"endpoint": {"address": socket_address(host_port)}} for host_port in host_ports]
    health_check = {"grpc_health_check": {"service_name": grpc_service}}
    return _cluster(name, name, protocol, health_check, tokens_dir, endpoints)


def http_cluster(
    name: str, host_ports: Sequence[str], grpc_host_ports: Sequence[str], grpc_service: str, tokens_dir: str
) -> dict:
    """A service's OpenAI REST data path over HTTP/1.1 (`host_ports`, one per replica, paired in order with
    its gRPC `grpc_host_ports`): the service's token, breakers and ejection as on its gRPC cluster, and
    each replica health checked by gRPC health on its own gRPC port, so that both clusters share one readiness."""
    if len(host_ports) != len(grpc_host_ports):
        raise ValueError(
            f"{name}: {len(host_ports)} HTTP upstreams for {len(grpc_host_ports)} gRPC ones "
            f"(pass --http-upstream {name}=HOST:PORT for each --upstream {name}, in the same order)"
        )
    endpoints = [
        {
            "endpoint": {
                "address": socket_address(host_port),
                "health_check_config": {"port_value": socket_address(grpc)["socket_address"]["port_value"]},
            }
        }
        for host_port, grpc in zip(host_ports, grpc_host_ports, strict=True)
    ]
    protocol = {"http_protocol_options": {}}
    # Envoy closes its idle connections to the data port before the port would: it never sends a request on
    # a connection the service is closing.
    idle = {"idle_timeout": f"{IDLE_TIMEOUT_S / 2:g}s"}
    health_check = _grpc_health_by_hand(grpc_service)
    return _cluster(http_cluster_name(name), name, protocol, health_check, tokens_dir, endpoints, idle)


def _grpc_health_by_hand(grpc_service: str) -> dict:
    """gRPC health's Check for `grpc_service`, spoken by Envoy's HTTP health checker over HTTP/2: its gRPC
    health checker refuses a cluster that is not HTTP/2 itself. Healthy when the answer is SERVING (the
    length-prefixed HealthCheckResponse {status: SERVING}); NOT_SERVING, an unknown service or any gRPC
    error (no such message in the body) is a failed check."""
    name = grpc_service.encode()
    request = b"\x0a" + bytes([len(name)]) + name  # HealthCheckRequest {service: name} (a name under 128 bytes)
    return {
        "http_health_check": {
            "path": "/grpc.health.v1.Health/Check",
            "method": "POST",
            "codec_client_type": "HTTP2",
            "request_headers_to_add": [
                {"header": {"key": "content-type", "value": "application/grpc"}},
                {"header": {"key": "te", "value": "trailers"}},
            ],
            "send": {"text": (b"\x00" + len(request).to_bytes(4, "big") + request).hex()},
            "receive": [{"text": (b"\x00" + (2).to_bytes(4, "big") + b"\x08\x01").hex()}],
        }
    }


def _cluster(
    cluster: str,
    service: str,
    protocol: dict,
    health_check: dict,
    tokens_dir: str,
    endpoints: list[dict],
    common_protocol: dict | None = None,
) -> dict:
    options = {"common_http_protocol_options": common_protocol} if common_protocol else {}
    return {
        "name": cluster,
        "type": "STRICT_DNS",
        "connect_timeout": "2s",
        "per_connection_buffer_limit_bytes": CONNECTION_BUFFER_BYTES,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": protocol,
                "http_filters": upstream_filters(service, tokens_dir),
                **options,
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
                **health_check,
            }
        ],
        "load_assignment": {"cluster_name": cluster, "endpoints": [{"lb_endpoints": endpoints}]},
    }
