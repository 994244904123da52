"""Routes: every gRPC path of a service (and so every REST route transcoded to it) goes to its cluster."""

from __future__ import annotations

from llmagg_gateway.descriptor import service_name


def service_routes(grpc_services: list[str]) -> list[dict]:
    return [
        {
            "match": {"prefix": f"/{grpc_service}/"},
            # No route timeout: a stream may run for minutes; the router enforces its own deadline.
            "route": {"cluster": service_name(grpc_service), "timeout": "0s"},
        }
        for grpc_service in grpc_services
    ]
