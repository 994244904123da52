"""Assemble the whole Envoy config from its parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llmagg.rpcs import DATA_REST_PATHS
from llmagg_gateway.addresses import socket_address
from llmagg_gateway.clusters import http_cluster, http_cluster_name, service_cluster
from llmagg_gateway.console_routes import DEFAULT_JAEGER_UI, console_routes, jaeger_ui_url
from llmagg_gateway.descriptor import service_name
from llmagg_gateway.http_filters import http_filters
from llmagg_gateway.limits import DEFAULT_MAX_HEAP_BYTES
from llmagg_gateway.listener import connection_manager, public_listener
from llmagg_gateway.overload import overload_manager
from llmagg_gateway.routes import (
    HTTP_DATA_SERVICE,
    client_rate_limits,
    http_data_routes,
    service_routes,
)
from llmagg_gateway.service_tokens import NODE
from llmagg_gateway.tracing import otlp_cluster, tracing, tracing_runtime


class GatewayConfigError(ValueError):
    """The services, the descriptor and the addresses do not fit together."""


LOOPBACK = ("127.", "localhost", "::1", "[::1]")
AUTH_SERVICE = "credentials"
LIMITS_SERVICE = "ratelimit"


def render(
    *,
    grpc_services: list[str],
    descriptor: str,
    listen: str,
    admin: str,
    upstreams: Mapping[str, str | Sequence[str]],
    tokens_dir: str,
    http_upstreams: Mapping[str, str | Sequence[str]] | None = None,
    client_auth: bool = True,
    max_heap_bytes: int = DEFAULT_MAX_HEAP_BYTES,
    otlp: str | None = None,
    client_limits: bool = True,
    client_limits_fail_closed: bool = False,
    trace_percent: float = 100.0,
    jaeger_ui: str = DEFAULT_JAEGER_UI,
) -> dict:
    """`grpc_services` are routed and transcoded; `upstreams` maps each service's name to HOST:PORT
    (or a list of them: one endpoint per replica);
    `tokens_dir` holds the SDS file with the gateway's token for each service (service_tokens.py).
    `http_upstreams` maps a service to its HTTP data path's HOST:PORT (or one per replica, paired in
    order with its gRPC ones): the router's gets POSTs to /v1/chat/completions and /v1/embeddings
    untranscoded (routes.py); without it those are transcoded to its gRPC methods.

    With `client_auth` every request is checked by the credentials service (ext_authz); without it
    the gateway refuses to listen anywhere but on loopback. With `otlp` (HOST:PORT of an OTLP/gRPC
    collector) the gateway traces `trace_percent` of the requests. With `client_limits` and the ratelimit service in the
    table the requests of clients with limits are checked against them (llmagg.gateway_limits; without:
    no client has limits, and no request takes that hop); `client_limits_fail_closed` refuses requests (503) while that service
    cannot answer, instead of letting them through (the default). `jaeger_ui`: where the console links traces.
    """
    missing = sorted({service_name(s) for s in grpc_services} - set(upstreams))
    if missing:
        raise GatewayConfigError(
            f"no address for the {', '.join(missing)} service: pass --upstream {missing[0]}=HOST:PORT"
        )
    host = listen.rpartition(":")[0]
    if not client_auth and not host.startswith(LOOPBACK):
        raise GatewayConfigError(
            f"refusing to listen on {host} with client authentication off: anyone who can reach it could use "
            "every account. Listen on 127.0.0.1 or switch client authentication on (GATEWAY_CLIENT_AUTH=on)."
        )
    if not 0 <= trace_percent <= 100:
        raise GatewayConfigError(f"the share of requests traced is a percent from 0 to 100, not {trace_percent:g}")
    try:
        jaeger_ui_url(jaeger_ui)
    except ValueError as exc:
        raise GatewayConfigError(str(exc)) from None
    if client_auth and AUTH_SERVICE not in {service_name(s) for s in grpc_services}:
        raise GatewayConfigError(f"client authentication needs the {AUTH_SERVICE} service in the service table")
    clusters = [
        service_cluster(service_name(s), _endpoints(upstreams[service_name(s)]), s, tokens_dir) for s in grpc_services
    ]
    names = {service_name(s) for s in grpc_services}
    data_routes: list[dict] = []
    http = {name: _endpoints(address) for name, address in (http_upstreams or {}).items() if _endpoints(address)}
    unknown = sorted(set(http) - ({HTTP_DATA_SERVICE} & names))
    if unknown:
        raise GatewayConfigError(
            f"no HTTP data path for --http-upstream {unknown[0]}=...: only the {HTTP_DATA_SERVICE} service has one"
        )
    if http:
        [router] = [s for s in grpc_services if service_name(s) == HTTP_DATA_SERVICE]
        grpc_endpoints = _endpoints(upstreams[HTTP_DATA_SERVICE])
        try:
            clusters.append(
                http_cluster(HTTP_DATA_SERVICE, http[HTTP_DATA_SERVICE], grpc_endpoints, router, tokens_dir)
            )
        except ValueError as exc:
            raise GatewayConfigError(str(exc)) from None
        data_routes = http_data_routes(HTTP_DATA_SERVICE, http_cluster_name(HTTP_DATA_SERVICE), client_auth)
    limits = LIMITS_SERVICE if client_limits and LIMITS_SERVICE in names else None
    filters = http_filters(
        descriptor,
        grpc_services,
        AUTH_SERVICE if client_auth else None,
        [cluster["name"] for cluster in clusters],
        limits,
        client_limits_fail_closed,
        DATA_REST_PATHS if data_routes else (),
    )
    manager = connection_manager(
        data_routes + console_routes(client_auth, jaeger_ui=jaeger_ui) + service_routes(grpc_services, client_auth),
        filters,
        client_rate_limits(client_auth) if limits else None,
    )
    if otlp:
        manager["tracing"] = tracing(trace_percent)
        clusters.append(otlp_cluster(otlp))
    config = {
        "node": NODE,
        "admin": {"address": socket_address(admin)},
        "overload_manager": overload_manager(max_heap_bytes),
        "static_resources": {"listeners": [public_listener(listen, manager)], "clusters": clusters},
    }
    if otlp:
        config["layered_runtime"] = tracing_runtime()
    return config


def _endpoints(upstream: str | Sequence[str]) -> list[str]:
    return [upstream] if isinstance(upstream, str) else list(upstream)
