"""The public listener: one HTTP connection manager serving REST and gRPC on the same port."""

from __future__ import annotations

from llmagg import gateway_keys, gateway_limits
from llmagg_gateway.access_log import access_log
from llmagg_gateway.addresses import socket_address
from llmagg_gateway.console_routes import MAX_ASSET_BYTES
from llmagg_gateway.limits import (
    CONNECTION_BUFFER_BYTES,
    MAX_CONCURRENT_STREAMS,
    MAX_REQUEST_HEADERS_KB,
    REQUEST_HEADERS_TIMEOUT,
    REQUEST_TIMEOUT,
)
from llmagg_gateway.local_replies import local_reply_config


def connection_manager(routes: list[dict], http_filters: list[dict], rate_limits: list[dict] | None = None) -> dict:
    virtual_host: dict = {
        "name": "llmagg",
        "domains": ["*"],
        "routes": routes,
        # Which trace a request is in, for a client to quote (the request id comes anyway).
        "response_headers_to_add": [
            {"header": {"key": "x-trace-id", "value": "%TRACE_ID%"}},
            # Answers carry usage, keys' names and account states: no cache keeps them.
            {"header": {"key": "cache-control", "value": "no-store"}, "append_action": "ADD_IF_ABSENT"},
        ],
        # The key and limit checks' own headers (x-llmagg-basic holds the client's key) end at the gateway, whatever
        # route a request takes (the router removes them after every filter has read them).
        "request_headers_to_remove": [
            gateway_keys.BASIC_HEADER,
            gateway_keys.AUTH_HEADER,
            gateway_limits.LIMITED_HEADER,
        ],
        # Only bodies up to this are kept for a retry: a large upload streams through once.
        "per_request_buffer_limit_bytes": CONNECTION_BUFFER_BYTES,
    }
    if rate_limits:
        virtual_host["rate_limits"] = rate_limits
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "public",
        "codec_type": "AUTO",
        "always_set_request_id_in_response": True,
        "max_request_headers_kb": MAX_REQUEST_HEADERS_KB,
        "request_timeout": REQUEST_TIMEOUT,
        "request_headers_timeout": REQUEST_HEADERS_TIMEOUT,
        "http2_protocol_options": {"max_concurrent_streams": MAX_CONCURRENT_STREAMS},
        "access_log": [access_log()],
        "local_reply_config": local_reply_config(),
        "route_config": {
            "name": "llmagg",
            "virtual_hosts": [virtual_host],
            "max_direct_response_body_size_bytes": MAX_ASSET_BYTES,  # the console's files (console_routes.py)
        },
        "http_filters": http_filters,
    }


def public_listener(listen: str, manager: dict) -> dict:
    return {
        "name": "public",
        "address": socket_address(listen),
        "per_connection_buffer_limit_bytes": CONNECTION_BUFFER_BYTES,
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}
        ],
    }
