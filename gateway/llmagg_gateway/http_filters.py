"""The HTTP filter chain, in order: the gateway's own /health, REST error shaping, (client auth),
(client limits), transcoding, routing.

Client authentication (client keys checked inside Envoy, with config from the credentials service by
xDS; ext_authz -> credentials for admin paths) and client rate limits (Envoy's rate-limit filter ->
ratelimit) take their places between the error filter and the transcoder, so that their rejections
are shaped like every other error and nothing unauthenticated reaches a service.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from llmagg import envoy_matchers, gateway_keys, gateway_limits
from llmagg_gateway.limits import MAX_BODY_BYTES
from llmagg_gateway.local_replies import HEALTH_PATH

LUA_FILTER = Path(__file__).with_name("openai_errors.lua")


def openai_errors() -> dict:
    return _lua("envoy.filters.http.lua", LUA_FILTER)


def _lua(name: str, source: Path) -> dict:
    return {
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": source.read_text()},
        },
    }


def _discovered(name: str, default: dict, cluster: str, types: tuple[str, ...] = ()) -> dict:
    """A filter whose config comes by xDS (ECDS) from `cluster` (of the default's type or one of
    `types`). Until the first answer the listener waits (warming), then serves with `default`: for client
    keys the empty table (DENY_ALL), with which Envoy checks no key itself; every `sk-llmagg-` key goes
    to ext_authz (which fails closed), any other is refused; for client limits every request is asked
    about."""
    return {
        "name": name,
        "config_discovery": {
            "config_source": {
                "api_config_source": {
                    "api_type": "GRPC",
                    "transport_api_version": "V3",
                    "grpc_services": [{"envoy_grpc": {"cluster_name": cluster}}],
                    "set_node_on_first_message_only": True,
                },
                "resource_api_version": "V3",
                "initial_fetch_timeout": "10s",
            },
            "default_config": default["typed_config"],
            "type_urls": [default["typed_config"]["@type"], *types],
        },
    }


def client_auth(cluster: str) -> list[dict]:
    """Client keys checked inside Envoy (llmagg.gateway_keys): the key-routing Lua and the basic_auth
    hashes, both served by the credentials service's xDS server; then ext_authz over gRPC to the same
    service for what they leave to it (admin paths, keys stored before hashes were), fail closed
    (503 when it cannot answer).

    ext_authz gets only `authorization` (the check needs nothing else; a BYOK provider key never
    leaves for it). Its OK sets x-llmagg-client-id/-scope and removes `authorization`; its denials
    carry their OpenAI-shaped body, passed through by local_replies.py.
    """
    ext_authz = {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "grpc_service": {"envoy_grpc": {"cluster_name": cluster}, "timeout": "2s"},
            "transport_api_version": "V3",
            "failure_mode_allow": False,
            "status_on_error": {"code": 503},
            "allowed_headers": {"patterns": [{"exact": "authorization"}]},
            "filter_enabled_metadata": {
                "filter": gateway_keys.METADATA_NAMESPACE,
                "path": [{"key": gateway_keys.METADATA_KEY}],
                "value": {"string_match": {"exact": gateway_keys.EXT_AUTHZ}},
            },
        },
    }
    return [
        _discovered(gateway_keys.ROUTING_FILTER, gateway_keys.routing_filter(gateway_keys.DENY_ALL), cluster),
        _discovered(gateway_keys.HASHES_FILTER, gateway_keys.hashes_filter(gateway_keys.DENY_ALL), cluster),
        ext_authz,
    ]


def limited_clients(cluster: str) -> dict:
    """Marks the requests whose client has limits (llmagg.gateway_limits, by xDS from the ratelimit
    service): the rate-limit filter asks about those only."""
    default = gateway_limits.default_filter()
    return _discovered(gateway_limits.FILTER_NAME, default, cluster, (envoy_matchers.MATCHER_TYPE,))


def client_limits(cluster: str, fail_closed: bool = False) -> dict:
    """Envoy's rate-limit filter asking the ratelimit service (envoy.service.ratelimit.v3) about a
    request, with the client id as its descriptor (routes.py): with client keys, about the requests of
    clients with limits only (limited_clients). Over a limit: 429 with the service's
    message (shaped as OpenAI's error by local_replies.py), Retry-After and the x-ratelimit-limit/
    -remaining/-reset headers Envoy derives from the answer (on every answer, not only 429s).
    `fail_closed`: when the service cannot answer, refuse (503) instead of letting the request through."""
    return {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": "llmagg",
            "timeout": "0.5s",
            "failure_mode_deny": fail_closed,
            "status_on_error": {"code": 503},
            "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
            "rate_limited_as_resource_exhausted": True,
            "rate_limit_service": {
                "grpc_service": {"envoy_grpc": {"cluster_name": cluster}, "timeout": "0.5s"},
                "transport_api_version": "V3",
            },
        },
    }


def transcoder(descriptor: str, grpc_services: list[str], skipped_paths: Sequence[str] = ()) -> dict:
    """REST to gRPC, but for a POST whose whole :path is one of `skipped_paths` (the router's HTTP data
    path, routes.py: proxied as it is)."""
    transcoding = {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": descriptor,
            "services": grpc_services,
            "print_options": {
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": True,
            },
            "request_validation_options": {"reject_unknown_method": True},
            "ignore_unknown_query_parameters": True,
            "max_request_body_size": MAX_BODY_BYTES,
            "max_response_body_size": MAX_BODY_BYTES,
        },
    }
    if not skipped_paths:
        return transcoding
    paths = {"matcher": envoy_matchers.by_header(":path", dict.fromkeys(skipped_paths, envoy_matchers.skip()))}
    # A POST to one of the paths only: another method is the transcoder's to answer (a 404).
    skipped = envoy_matchers.by_header(":method", {"POST": paths})
    return {"name": transcoding["name"], "typed_config": envoy_matchers.with_matcher(transcoding, skipped)}


def router() -> dict:
    return {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }


def health_check(clusters: list[str]) -> dict:
    """`GET /health` answered by the gateway itself: 200 while every service has a healthy replica and
    the gateway is not draining, 503 otherwise (for load balancers in front of it); local_replies.py
    gives both their bodies."""
    return {
        "name": "envoy.filters.http.health_check",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck",
            "pass_through_mode": False,
            "headers": [{"name": ":path", "string_match": {"exact": HEALTH_PATH}}],
            "cluster_min_healthy_percentages": {name: {"value": 100} for name in clusters},
        },
    }


def http_filters(
    descriptor: str,
    grpc_services: list[str],
    auth_cluster: str | None,
    clusters: list[str],
    limits_cluster: str | None = None,
    limits_fail_closed: bool = False,
    untranscoded_paths: Sequence[str] = (),
) -> list[dict]:
    """`auth_cluster`: the service answering ext_authz, or None when client authentication is off;
    `limits_cluster`: the service answering Envoy's rate-limit API, or None for no client limits;
    `untranscoded_paths`: the REST paths proxied as they are (the router's HTTP data path)."""
    auth = client_auth(auth_cluster) if auth_cluster else []
    limits = [client_limits(limits_cluster, limits_fail_closed)] if limits_cluster else []
    if limits and auth_cluster:
        limits.insert(0, limited_clients(limits_cluster))
    return [
        health_check(clusters),
        openai_errors(),
        *auth,
        *limits,
        transcoder(descriptor, grpc_services, untranscoded_paths),
        router(),
    ]
