"""Routes: every gRPC path of a service (and so every REST route transcoded to it) goes to its cluster."""

from __future__ import annotations

from llmagg_gateway.descriptor import service_name

# Only requests a service did not serve are retried, on another replica where there is one: the
# connection failed, the stream was refused (a replica shutting down), or the service said so
# (x-llmagg-retry-elsewhere: shutting down, or at its in-flight limit). A served request never is:
# a model call is not idempotent.
RETRY_POLICY = {
    "retry_on": "connect-failure,refused-stream,reset-before-request,retriable-headers",
    "num_retries": 2,
    "retriable_headers": [{"name": "x-llmagg-retry-elsewhere", "string_match": {"exact": "true"}}],
    "retry_host_predicate": [
        {
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
            },
        }
    ],
    "host_selection_retry_max_attempts": 3,
    "retry_back_off": {"base_interval": "0.1s", "max_interval": "1s"},
}


def service_routes(grpc_services: list[str]) -> list[dict]:
    return [
        {
            "match": {"prefix": f"/{grpc_service}/"},
            # No route timeout: a stream may run for minutes; the router enforces its own deadline.
            "route": {"cluster": service_name(grpc_service), "timeout": "0s", "retry_policy": RETRY_POLICY},
        }
        for grpc_service in grpc_services
    ]
