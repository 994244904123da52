"""The generated Envoy config: derived from the service table and the descriptor, accepted by Envoy."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from llmagg import gateway_keys, gateway_limits
from llmagg.suite import SERVICES
from llmagg_devstack import envoy_binary
from llmagg_gateway.__main__ import DEFAULT_DESCRIPTOR, main, table_services
from llmagg_gateway.config import GatewayConfigError, render
from llmagg_gateway.descriptor import llmagg_services
from llmagg_gateway.limits import MAX_BODY_BYTES
from llmagg_gateway.service_tokens import sds_document


def rendered(tmp_path, *extra):
    out = tmp_path / "envoy.yaml"
    assert main(["--out", str(out), *extra]) == 0
    return out, yaml.safe_load(out.read_text())


def _connection_manager(config):
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def test_every_service_of_the_table_is_transcoded_routed_and_health_checked(tmp_path):
    _, config = rendered(tmp_path, "--upstream", "router=10.0.0.7:7000")
    hcm = _connection_manager(config)
    grpc_services = sorted(s.grpc_service for s in SERVICES)
    transcoder = next(f for f in hcm["http_filters"] if f["name"].endswith("grpc_json_transcoder"))
    assert transcoder["typed_config"]["services"] == grpc_services
    *routes, catch_all = hcm["route_config"]["virtual_hosts"][0]["routes"]
    routes = [
        r for r in routes if "route" in r
    ]  # the console's files and rules answer themselves (test_console_routes)
    assert [(r["match"]["prefix"], r["route"]["cluster"]) for r in routes] == [
        (f"/{s.grpc_service}/", s.name) for s in sorted(SERVICES, key=lambda s: s.grpc_service)
    ]
    assert catch_all["match"] == {"prefix": "/"}  # ext_authz checks nothing on a request without a route
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert set(clusters) == {s.name for s in SERVICES}
    for service in SERVICES:
        [check] = clusters[service.name]["health_checks"]
        assert check["grpc_health_check"]["service_name"] == service.grpc_service
    address = clusters["router"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address["socket_address"] == {"address": "10.0.0.7", "port_value": 7000}


def test_an_upstream_given_twice_is_one_cluster_with_an_endpoint_per_replica(tmp_path):
    _, config = rendered(tmp_path, "--upstream", "router=127.0.0.1:7000", "--upstream", "router=127.0.0.1:7001")
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    [locality] = clusters["router"]["load_assignment"]["endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in locality["lb_endpoints"]] == [7000, 7001]
    [other] = clusters["agent"]["load_assignment"]["endpoints"]
    assert len(other["lb_endpoints"]) == 1


def test_without_an_upstream_each_service_is_on_its_table_port(tmp_path):
    _, config = rendered(tmp_path)
    for cluster in config["static_resources"]["clusters"]:
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        assert address["socket_address"]["port_value"] == next(s.port for s in SERVICES if s.name == cluster["name"])


def test_envoy_accepts_the_rendered_config(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    for service in SERVICES:  # Envoy wants each service's SDS file to be there
        (tokens / f"{service.name}.yaml").write_text(yaml.safe_dump(sds_document(service.name, "a-token")))
    out, _ = rendered(
        tmp_path, "--listen", "127.0.0.1:18000", "--admin", "127.0.0.1:19901", "--tokens-dir", str(tokens)
    )
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(out), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_request_to_a_service_carries_the_gateways_token_from_its_sds_file_whatever_the_client_sent(tmp_path):
    out, config = rendered(tmp_path, "--tokens-dir", "/secrets/gateway")
    for cluster in config["static_resources"]["clusters"]:
        options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        injector, codec = options["http_filters"]  # upstream filters: ext_authz and rate-limit calls too
        assert codec["name"] == "envoy.filters.http.upstream_codec"
        assert injector["typed_config"]["overwrite"] is True  # a client's x-llmagg-service-token is replaced
        generic = injector["typed_config"]["credential"]["typed_config"]
        assert generic["header"] == "x-llmagg-service-token"
        assert generic["credential"]["sds_config"] == {
            "path_config_source": {"path": f"/secrets/gateway/{cluster['name']}.yaml"}
        }
    assert "generic_secret" not in out.read_text()  # no token in the config itself


def test_streams_are_not_cut_by_a_route_timeout_and_bodies_up_to_the_limit_pass(tmp_path):
    _, config = rendered(tmp_path)
    hcm = _connection_manager(config)
    routes = [r for r in hcm["route_config"]["virtual_hosts"][0]["routes"] if "route" in r]  # not the console's
    assert all(r["route"]["timeout"] == "0s" for r in routes)
    transcoder = next(f for f in hcm["http_filters"] if f["name"].endswith("grpc_json_transcoder"))
    assert transcoder["typed_config"]["max_request_body_size"] == MAX_BODY_BYTES
    assert transcoder["typed_config"]["request_validation_options"]["reject_unknown_method"] is True


def test_the_error_filter_runs_before_the_transcoder(tmp_path):
    _, config = rendered(tmp_path)
    names = [f["name"] for f in _connection_manager(config)["http_filters"]]
    assert names.index("envoy.filters.http.lua") < names.index("envoy.filters.http.grpc_json_transcoder")
    assert names[-1] == "envoy.filters.http.router"


def test_client_keys_are_checked_inside_envoy_with_config_by_xds_and_admin_paths_by_ext_authz(tmp_path):
    _, config = rendered(tmp_path)
    hcm = _connection_manager(config)
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == [
        "envoy.filters.http.health_check",  # /health answers without a key
        "envoy.filters.http.lua",
        gateway_keys.ROUTING_FILTER,  # by xDS from credentials
        gateway_keys.HASHES_FILTER,
        "envoy.filters.http.ext_authz",  # admin paths and keys stored without a hash
        gateway_limits.FILTER_NAME,  # by xDS from ratelimit: marks the clients with limits
        "envoy.filters.http.ratelimit",  # client limits, keyed by the client id just set
        "llmagg.unary_calls",  # small non-streamed bodies to unary methods: after the key and limits
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.router",
    ]
    for discovered in hcm["http_filters"][2:4]:
        discovery = discovered["config_discovery"]
        source = discovery["config_source"]["api_config_source"]
        assert source["api_type"] == "GRPC" and source["grpc_services"] == [
            {"envoy_grpc": {"cluster_name": "credentials"}}
        ]
        # Until the service answers: the listener warms, then denies every key (fail closed).
        assert "apply_default_config_without_warming" not in discovery
    routing, hashes = (f["config_discovery"]["default_config"] for f in hcm["http_filters"][2:4])
    assert routing == gateway_keys.routing_filter(gateway_keys.DENY_ALL)["typed_config"]
    assert hashes["extension_config"]["typed_config"]["users"] == {"inline_string": "nobody:{SHA}" + "A" * 27 + "=\n"}
    authz = hcm["http_filters"][4]["typed_config"]
    assert authz["grpc_service"]["envoy_grpc"]["cluster_name"] == "credentials"
    assert authz["failure_mode_allow"] is False and authz["status_on_error"] == {"code": 503}
    assert authz["allowed_headers"] == {"patterns": [{"exact": "authorization"}]}  # never x-provider-api-key
    assert authz["filter_enabled_metadata"]["filter"] == gateway_keys.METADATA_NAMESPACE
    routes = [r for r in hcm["route_config"]["virtual_hosts"][0]["routes"] if "route" in r]  # not the console's
    assert not any("request_headers_to_add" in r for r in routes)
    # The key and limit checks' own headers (x-llmagg-basic is the client's key) never reach a service,
    # whatever route a request takes (the catch-all too): removed for the whole virtual host.
    virtual_host = hcm["route_config"]["virtual_hosts"][0]
    assert virtual_host["request_headers_to_remove"] == ["x-llmagg-basic", "x-llmagg-auth", "x-llmagg-client-limits"]
    assert not any(set(r.get("request_headers_to_remove", ())) - {"authorization"} for r in virtual_host["routes"])
    passed = [
        m
        for m in hcm["local_reply_config"]["mappers"]
        if "text_format_source" in m["body_format_override"] and "status_code_filter" in m["filter"]
    ]  # (the console's files keep their bodies too: test_console_routes)
    assert sorted(m["filter"]["status_code_filter"]["comparison"]["value"]["default_value"] for m in passed) == [
        401,
        403,
    ]


def test_with_client_auth_off_every_request_is_anonymous_and_loses_its_authorization(tmp_path):
    _, config = rendered(tmp_path, "--client-auth", "off")
    hcm = _connection_manager(config)
    assert "envoy.filters.http.ext_authz" not in [f["name"] for f in hcm["http_filters"]]
    routes = {r["route"]["cluster"]: r for r in hcm["route_config"]["virtual_hosts"][0]["routes"][:-1] if "route" in r}
    added = {h["header"]["key"]: h["header"]["value"] for h in routes["router"]["request_headers_to_add"]}
    assert added == {"x-llmagg-client-id": "anonymous", "x-llmagg-client-scope": "client"}
    assert routes["router"]["request_headers_to_remove"] == ["authorization"]
    assert "request_headers_to_remove" not in routes["credentials"]  # it checks admin keys itself


def test_client_limits_ask_ratelimit_about_clients_with_limits_and_fail_open_by_default(tmp_path):
    _, config = rendered(tmp_path)
    hcm = _connection_manager(config)
    marking = next(f for f in hcm["http_filters"] if f["name"] == gateway_limits.FILTER_NAME)["config_discovery"]
    assert marking["config_source"]["api_config_source"]["grpc_services"] == [
        {"envoy_grpc": {"cluster_name": "ratelimit"}}
    ]
    # Until ratelimit says who has limits, every request is marked (asked about).
    assert marking["default_config"] == gateway_limits.mark_limited()
    assert marking["type_urls"] == [gateway_limits.HEADER_MUTATION_TYPE, gateway_limits.MATCHER_TYPE]
    limits = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.ratelimit")["typed_config"]
    assert limits["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"] == "ratelimit"
    assert limits["failure_mode_deny"] is False and limits["enable_x_ratelimit_headers"] == "DRAFT_VERSION_03"
    assert hcm["route_config"]["virtual_hosts"][0]["rate_limits"] == [
        {
            "actions": [
                # An unmarked request (a client without limits) gets no descriptor, and so no call.
                {"request_headers": {"header_name": "x-llmagg-client-limits", "descriptor_key": "limits"}},
                {"request_headers": {"header_name": "x-llmagg-client-id", "descriptor_key": "client_id"}},
                {"request_headers": {"header_name": "x-llmagg-client-scope", "descriptor_key": "client_scope"}},
            ]
        }
    ]
    retry_after = next(
        m["headers_to_add"][0]
        for m in hcm["local_reply_config"]["mappers"]
        if "status_code_filter" in m["filter"]
        and m["filter"]["status_code_filter"]["comparison"]["value"]["default_value"] == 429
    )
    assert retry_after["append_action"] == "ADD_IF_ABSENT"  # the rate-limit service's own Retry-After wins
    _, closed = rendered(tmp_path, "--client-limits-failure", "closed")
    limits = next(f for f in _connection_manager(closed)["http_filters"] if f["name"].endswith("ratelimit"))
    assert limits["typed_config"]["failure_mode_deny"] is True


def test_without_client_limits_requests_skip_the_ratelimit_hop(tmp_path):
    _, config = rendered(tmp_path, "--client-limits", "off")
    hcm = _connection_manager(config)
    assert "envoy.filters.http.ratelimit" not in [f["name"] for f in hcm["http_filters"]]
    assert "rate_limits" not in hcm["route_config"]["virtual_hosts"][0]
    assert "ratelimit" in [c["name"] for c in config["static_resources"]["clusters"]]  # the router still calls it


def test_with_client_auth_off_every_caller_is_limited_as_anonymous(tmp_path):
    _, config = rendered(tmp_path, "--client-auth", "off")
    assert _connection_manager(config)["route_config"]["virtual_hosts"][0]["rate_limits"] == [
        {"actions": [{"generic_key": {"descriptor_key": "client_id", "descriptor_value": "anonymous"}}]}
    ]


@pytest.mark.parametrize("listen", ["0.0.0.0:8000", "192.0.2.10:8000"])
def test_without_client_auth_the_gateway_refuses_to_listen_beyond_loopback(tmp_path, listen, capsys):
    assert main(["--out", str(tmp_path / "e.yaml"), "--client-auth", "off", "--listen", listen]) == 2
    assert "refusing to listen" in capsys.readouterr().err
    out, _ = rendered(tmp_path, "--listen", listen)  # with client auth on, any address is allowed
    assert out.exists()


def test_a_service_without_an_address_is_refused():
    with pytest.raises(GatewayConfigError, match="--upstream agent="):
        render(
            grpc_services=["llmagg.agent.v1.AgentService"], descriptor="x.pb", listen="127.0.0.1:1",
            admin="127.0.0.1:2", upstreams={}, tokens_dir="t",
        )  # fmt: skip


def test_a_proto_without_a_row_in_the_table_is_refused(monkeypatch):
    monkeypatch.setattr("llmagg_gateway.__main__.SERVICES", SERVICES[1:])
    with pytest.raises(GatewayConfigError, match=rf"not in the table \['{SERVICES[0].grpc_service}'\]"):
        table_services(DEFAULT_DESCRIPTOR)


def test_the_descriptor_declares_exactly_the_tables_services():
    assert llmagg_services(DEFAULT_DESCRIPTOR) == sorted(s.grpc_service for s in SERVICES)


def test_tracing_samples_the_percent_asked_and_exports_in_batches_and_envoy_accepts_it(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    for service in SERVICES:
        (tokens / f"{service.name}.yaml").write_text(yaml.safe_dump(sds_document(service.name, "a-token")))
    out, config = rendered(
        tmp_path, "--otlp", "127.0.0.1:4317", "--trace-percent", "2.5", "--tokens-dir", str(tokens),
        "--listen", "127.0.0.1:18000", "--admin", "127.0.0.1:19901",
    )  # fmt: skip
    tracing = _connection_manager(config)["tracing"]
    assert tracing["random_sampling"] == {"value": 2.5}
    [layer] = config["layered_runtime"]["layers"]
    assert layer["static_layer"] == {
        "tracing.opentelemetry.min_flush_spans": 64,
        "tracing.opentelemetry.flush_interval_ms": 1000,
    }
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(out), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _, untraced = rendered(tmp_path)
    assert "tracing" not in _connection_manager(untraced) and "layered_runtime" not in untraced


@pytest.mark.parametrize("percent", ["-1", "100.5"])
def test_a_traced_share_beyond_0_to_100_percent_is_refused(tmp_path, percent, capsys):
    assert main(["--out", str(tmp_path / "envoy.yaml"), "--otlp", "127.0.0.1:4317", "--trace-percent", percent]) == 2
    assert f"the share of requests traced is a percent from 0 to 100, not {percent}" in capsys.readouterr().err


def test_envoy_spreads_a_services_streams_over_several_connections(tmp_path):
    """The kernel gives each connection to one of the router's workers (SO_REUSEPORT): under load Envoy
    must open several, not carry every stream of a thread on one."""
    _, config = rendered(tmp_path)
    for cluster in config["static_resources"]["clusters"]:
        options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert options["explicit_http_config"]["http2_protocol_options"] == {"max_concurrent_streams": 4}
