"""Routes: every gRPC path of a service (and so every REST route transcoded to it) goes to its cluster.

With client authentication off, the routes themselves do what ext_authz's OK would: every request is
`x-llmagg-client-id: anonymous`, and `authorization` is removed before it goes on, except towards the
credentials service, which checks admin keys itself.
"""

from __future__ import annotations

from llmagg import gateway_limits
from llmagg.rpcs import DATA_REST_PATHS
from llmagg_gateway.descriptor import service_name

CLIENT_ID_HEADER = "x-llmagg-client-id"
CLIENT_SCOPE_HEADER = "x-llmagg-client-scope"
ANONYMOUS = "anonymous"
# The service whose HTTP data port serves the OpenAI REST paths of llmagg.rpcs.DATA_REST_PATHS (POST only).
HTTP_DATA_SERVICE = "router"
KEY_CHECKING_SERVICES = frozenset({"credentials"})

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


def client_rate_limits(client_auth: bool = True) -> list[dict]:
    """The descriptor a request is rate limited by: its client id and scope (the headers the key check
    set), for a client with limits only (llmagg.gateway_limits). With client auth off every caller is
    `anonymous`, a constant (route headers are added after the rate-limit filter runs), and asked about.
    On the virtual host, so REST paths count before the transcoder routes them."""
    if client_auth:
        actions = [
            gateway_limits.descriptor_action(),  # none (and no call) for a client without limits
            {"request_headers": {"header_name": CLIENT_ID_HEADER, "descriptor_key": "client_id"}},
            {"request_headers": {"header_name": CLIENT_SCOPE_HEADER, "descriptor_key": "client_scope"}},
        ]
    else:
        actions = [{"generic_key": {"descriptor_key": "client_id", "descriptor_value": ANONYMOUS}}]
    return [{"actions": actions}]


def _overwrite(key: str, value: str) -> dict:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _as_anonymous(route: dict, service: str) -> dict:
    """With client auth off: what ext_authz's OK would do (the key check's own headers go for every
    route: listener.py)."""
    route["request_headers_to_add"] = [
        _overwrite(CLIENT_ID_HEADER, ANONYMOUS),
        _overwrite(CLIENT_SCOPE_HEADER, "client"),
    ]
    if service not in KEY_CHECKING_SERVICES:
        route["request_headers_to_remove"] = ["authorization"]
    return route


def http_data_routes(service: str, cluster: str, client_auth: bool = True) -> list[dict]:
    """POSTs to the OpenAI REST paths the router serves itself over HTTP/1.1 (its data path), which the
    transcoder leaves alone (http_filters.py): before every other route. With a query string a request
    is still transcoded (to the gRPC method: the transcoder's match is on the whole :path)."""
    routes = []
    for path in DATA_REST_PATHS:
        route = {
            "match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]},
            # No route timeout: a stream may run for minutes; the router enforces its own deadline.
            "route": {"cluster": cluster, "timeout": "0s", "retry_policy": RETRY_POLICY},
        }
        routes.append(route if client_auth else _as_anonymous(route, service))
    return routes


def service_routes(grpc_services: list[str], client_auth: bool = True) -> list[dict]:
    """One route per service on its gRPC prefix, then a catch-all.

    The catch-all exists for ext_authz, which checks nothing on a request without a route: a REST path
    only gets its service's route once the transcoder (after ext_authz) has rewritten it, and so it
    needs one to be authorised. It never serves anything itself: the transcoder answers unknown REST
    paths with a 404 and clears the route cache after rewriting known ones.
    """
    routes = []
    for grpc_service in grpc_services:
        name = service_name(grpc_service)
        # No route timeout: a stream may run for minutes; the router enforces its own deadline.
        route: dict = {
            "match": {"prefix": f"/{grpc_service}/"},
            "route": {"cluster": name, "timeout": "0s", "retry_policy": RETRY_POLICY},
        }
        routes.append(route if client_auth else _as_anonymous(route, name))
    if grpc_services:
        routes.append({"match": {"prefix": "/"}, "route": {"cluster": service_name(grpc_services[0]), "timeout": "0s"}})
    return routes
