"""Render the Envoy config from the proto descriptor: one route and cluster per llmagg service.

`python gateway/generate.py` writes gateway/envoy.yaml (loopback defaults, checked in and kept fresh
by `make check`); `make run`, the tests and deploy/k8s render their own with other addresses.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import yaml
from google.protobuf import descriptor_pb2

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_DESCRIPTOR = HERE / "llmagg.pb"
LUA_FILTER = HERE / "openai_errors.lua"
# The default port of each service (DESIGN.md); overridden with --upstream NAME=HOST:PORT.
DEFAULT_UPSTREAMS = {"router": "127.0.0.1:50051"}
MAX_BODY_BYTES = 32 * 1024 * 1024

# OpenAI error `type` and `code` for replies Envoy makes itself (unknown path, body too large, no
# upstream); a code of None reports Envoy's own response code details.
_LOCAL_REPLY_ERRORS = {
    400: ("invalid_request_error", None),
    404: ("invalid_request_error", "unknown_url"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    502: ("service_unavailable_error", "gateway_upstream_error"),
    503: ("service_unavailable_error", "gateway_upstream_unavailable"),
    504: ("timeout_error", "gateway_timeout"),
}


def llmagg_services(descriptor_path: pathlib.Path) -> list[str]:
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes())
    return sorted(f"{f.package}.{s.name}" for f in files.file if f.package.startswith("llmagg.") for s in f.service)


def _service_cluster(service: str) -> str:
    return service.split(".")[1]  # llmagg.<service>.v1.XService -> <service>


def _address(host_port: str) -> dict:
    host, _, port = host_port.rpartition(":")
    return {"socket_address": {"address": host, "port_value": int(port)}}


def _local_reply_config() -> dict:
    def body(error_type: str, code: str | None) -> dict:
        return {
            "json_format": {
                "error": {
                    "message": "%LOCAL_REPLY_BODY%",
                    "type": error_type,
                    "param": None,
                    "code": code or "%RESPONSE_CODE_DETAILS%",
                }
            },
            "content_type": "application/json",
        }

    mappers = [
        {
            "filter": {
                "status_code_filter": {
                    "comparison": {"op": "EQ", "value": {"default_value": status, "runtime_key": f"llmagg.lr.{status}"}}
                }
            },
            "body_format_override": body(error_type, code),
        }
        for status, (error_type, code) in _LOCAL_REPLY_ERRORS.items()
    ]
    return {"mappers": mappers, "body_format": body("server_error", None)}


def _cluster(name: str, host_port: str, service: str) -> dict:
    return {
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "2s",
        "per_connection_buffer_limit_bytes": MAX_BODY_BYTES,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
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
                "grpc_health_check": {"service_name": service},
            }
        ],
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(host_port)}}]}],
        },
    }


def render(
    *,
    services: list[str],
    descriptor: str,
    listen: str,
    admin: str,
    upstreams: dict[str, str],
) -> dict:
    routes = [
        {
            "match": {"prefix": f"/{service}/"},
            # No route timeout: a stream may run for minutes; the router enforces its own deadline.
            "route": {"cluster": _service_cluster(service), "timeout": "0s"},
        }
        for service in services
    ]
    clusters = {}
    for service in services:
        name = _service_cluster(service)
        if name not in upstreams:
            raise SystemExit(f"no address for the {name} service: pass --upstream {name}=HOST:PORT")
        clusters[name] = _cluster(name, upstreams[name], service)
    http_filters = [
        {
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": LUA_FILTER.read_text()},
            },
        },
        {
            "name": "envoy.filters.http.grpc_json_transcoder",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
                "proto_descriptor": descriptor,
                "services": services,
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
        },
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        },
    ]
    access_log = {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {
                "json_format": {
                    "ts": "%START_TIME%",
                    "service": "gateway",
                    "method": "%REQ(:METHOD)%",
                    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                    "status": "%RESPONSE_CODE%",
                    "details": "%RESPONSE_CODE_DETAILS%",
                    "duration_ms": "%DURATION%",
                    "upstream": "%UPSTREAM_CLUSTER%",
                    "provider": "%RESP(X-LLMAGG-PROVIDER)%",
                    "request_id": "%REQ(X-REQUEST-ID)%",
                }
            },
        },
    }
    connection_manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "public",
        "codec_type": "AUTO",
        "always_set_request_id_in_response": True,
        "access_log": [access_log],
        "local_reply_config": _local_reply_config(),
        "route_config": {
            "name": "llmagg",
            "virtual_hosts": [{"name": "llmagg", "domains": ["*"], "routes": routes}],
        },
        "http_filters": http_filters,
    }
    return {
        "admin": {"address": _address(admin)},
        "static_resources": {
            "listeners": [
                {
                    "name": "public",
                    "address": _address(listen),
                    "per_connection_buffer_limit_bytes": MAX_BODY_BYTES,
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": connection_manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": list(clusters.values()),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--descriptor", help="FileDescriptorSet from make protos (default: gateway/llmagg.pb)")
    parser.add_argument(
        "--descriptor-path-in-config",
        help="the descriptor's path as Envoy will see it (default: --descriptor as given, else relative to the repo)",
    )
    parser.add_argument("--listen", default="127.0.0.1:8000", help="REST and gRPC listener")
    parser.add_argument("--admin", default="127.0.0.1:9901", help="Envoy admin listener")
    parser.add_argument("--upstream", action="append", default=[], metavar="NAME=HOST:PORT")
    parser.add_argument("--out", default=str(HERE / "envoy.yaml"), help="where to write the config; - for stdout")
    parser.add_argument("--check", action="store_true", help="fail if --out differs from a fresh rendering")
    args = parser.parse_args(argv)
    upstreams = dict(DEFAULT_UPSTREAMS)
    for item in args.upstream:
        name, _, address = item.partition("=")
        upstreams[name] = address
    descriptor = pathlib.Path(args.descriptor) if args.descriptor else DEFAULT_DESCRIPTOR
    # The checked-in config must not depend on where the repo is cloned: Envoy runs from its root.
    in_config = args.descriptor_path_in_config or args.descriptor or str(DEFAULT_DESCRIPTOR.relative_to(HERE.parent))
    config = render(
        services=llmagg_services(descriptor),
        descriptor=in_config,
        listen=args.listen,
        admin=args.admin,
        upstreams=upstreams,
    )
    text = "# Generated by gateway/generate.py from the proto descriptor; do not edit.\n" + yaml.safe_dump(
        config, sort_keys=False, width=120
    )
    if args.check:
        current = pathlib.Path(args.out).read_text() if pathlib.Path(args.out).exists() else ""
        if current != text:
            print(f"{args.out} is stale (run `make protos`)", file=sys.stderr)
            return 1
    elif args.out == "-":
        sys.stdout.write(text)
    else:
        pathlib.Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
