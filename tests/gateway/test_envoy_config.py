"""The generated Envoy config: derived from the service table and the descriptor, accepted by Envoy."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from concurrent import futures

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from llmagg import envoy_matchers, gateway_keys, gateway_limits
from llmagg.common.http_server import IDLE_TIMEOUT_S
from llmagg.suite import SERVICES
from llmagg_devstack import envoy_binary, free_port
from llmagg_gateway.__main__ import DEFAULT_DESCRIPTOR, main, table_services
from llmagg_gateway.clusters import http_cluster
from llmagg_gateway.config import GatewayConfigError, render
from llmagg_gateway.descriptor import llmagg_services
from llmagg_gateway.limits import MAX_BODY_BYTES
from llmagg_gateway.service_tokens import NODE, sds_document

from ..helpers import wait_for


def rendered(tmp_path, *extra):
    out = tmp_path / "envoy.yaml"
    assert main(["--out", str(out), *extra]) == 0
    return out, yaml.safe_load(out.read_text())


def _connection_manager(config):
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def _transcoder(hcm):
    """The transcoder's own config (inside the matcher that skips it for the HTTP data path)."""
    wrapped = next(f for f in hcm["http_filters"] if f["name"].endswith("grpc_json_transcoder"))
    return wrapped["typed_config"]["extension_config"]["typed_config"]


def _clusters(config):
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def _endpoints(cluster):
    [locality] = cluster["load_assignment"]["endpoints"]
    return locality["lb_endpoints"]


ROUTER = next(s for s in SERVICES if s.name == "router")
DATA_PATHS = ["/v1/chat/completions", "/v1/embeddings"]


def test_every_service_of_the_table_is_transcoded_routed_and_health_checked(tmp_path):
    _, config = rendered(tmp_path, "--upstream", "router=10.0.0.7:7000")
    hcm = _connection_manager(config)
    grpc_services = sorted(s.grpc_service for s in SERVICES)
    assert _transcoder(hcm)["services"] == grpc_services
    *routes, catch_all = hcm["route_config"]["virtual_hosts"][0]["routes"]
    routes = [
        r for r in routes if "route" in r and "prefix" in r["match"]
    ]  # the console's files and rules answer themselves (test_console_routes); the data path: below
    assert [(r["match"]["prefix"], r["route"]["cluster"]) for r in routes] == [
        (f"/{s.grpc_service}/", s.name) for s in sorted(SERVICES, key=lambda s: s.grpc_service)
    ]
    assert catch_all["match"] == {"prefix": "/"}  # ext_authz checks nothing on a request without a route
    clusters = _clusters(config)
    assert set(clusters) == {s.name for s in SERVICES} | {"router-http"}
    for service in SERVICES:
        [check] = clusters[service.name]["health_checks"]
        assert check["grpc_health_check"]["service_name"] == service.grpc_service
    address = clusters["router"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address["socket_address"] == {"address": "10.0.0.7", "port_value": 7000}


def test_an_upstream_given_twice_is_one_cluster_with_an_endpoint_per_replica(tmp_path):
    _, config = rendered(
        tmp_path, "--upstream", "router=127.0.0.1:7000", "--upstream", "router=127.0.0.1:7001",
        "--http-upstream", "router=127.0.0.1:8000", "--http-upstream", "router=127.0.0.1:8001",
    )  # fmt: skip
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    [locality] = clusters["router"]["load_assignment"]["endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in locality["lb_endpoints"]] == [7000, 7001]
    ports = [e["endpoint"]["address"]["socket_address"]["port_value"] for e in _endpoints(clusters["router-http"])]
    assert ports == [8000, 8001]
    [other] = clusters["agent"]["load_assignment"]["endpoints"]
    assert len(other["lb_endpoints"]) == 1


def test_without_an_upstream_each_service_is_on_its_table_port(tmp_path):
    _, config = rendered(tmp_path)
    ports = {s.name: s.port for s in SERVICES} | {"router-http": ROUTER.http_port}
    for cluster in config["static_resources"]["clusters"]:
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        assert address["socket_address"] == {"address": "127.0.0.1", "port_value": ports[cluster["name"]]}


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
        service = cluster["name"].removesuffix("-http")  # the router's data path carries the router's token
        assert generic["credential"]["sds_config"] == {
            "path_config_source": {"path": f"/secrets/gateway/{service}.yaml"}
        }
    assert "generic_secret" not in out.read_text()  # no token in the config itself


def test_streams_are_not_cut_by_a_route_timeout_and_bodies_up_to_the_limit_pass(tmp_path):
    _, config = rendered(tmp_path)
    hcm = _connection_manager(config)
    routes = [r for r in hcm["route_config"]["virtual_hosts"][0]["routes"] if "route" in r]  # not the console's
    assert all(r["route"]["timeout"] == "0s" for r in routes)
    assert _transcoder(hcm)["max_request_body_size"] == MAX_BODY_BYTES
    assert _transcoder(hcm)["request_validation_options"]["reject_unknown_method"] is True


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
    routes = [r for r in hcm["route_config"]["virtual_hosts"][0]["routes"][:-1] if "route" in r]
    by_cluster = {r["route"]["cluster"]: r for r in routes}
    for router in [r for r in routes if r["route"]["cluster"] in ("router", "router-http")]:  # both data paths
        added = {h["header"]["key"]: h["header"]["value"] for h in router["request_headers_to_add"]}
        assert added == {"x-llmagg-client-id": "anonymous", "x-llmagg-client-scope": "client"}
        assert router["request_headers_to_remove"] == ["authorization"]
    assert "request_headers_to_remove" not in by_cluster["credentials"]  # it checks admin keys itself


def test_client_limits_ask_ratelimit_about_clients_with_limits_and_fail_open_by_default(tmp_path):
    _, config = rendered(tmp_path)
    hcm = _connection_manager(config)
    marking = next(f for f in hcm["http_filters"] if f["name"] == gateway_limits.FILTER_NAME)["config_discovery"]
    assert marking["config_source"]["api_config_source"]["grpc_services"] == [
        {"envoy_grpc": {"cluster_name": "ratelimit"}}
    ]
    # Until ratelimit says who has limits, every request is marked (asked about).
    assert marking["default_config"] == gateway_limits.mark_limited()
    assert marking["type_urls"] == [gateway_limits.HEADER_MUTATION_TYPE, envoy_matchers.MATCHER_TYPE]
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
        if cluster["name"] == "router-http":  # HTTP/1.1: one request per connection at a time anyway
            assert options["explicit_http_config"] == {"http_protocol_options": {}}
        else:
            assert options["explicit_http_config"]["http2_protocol_options"] == {"max_concurrent_streams": 4}


def test_chat_and_embedding_posts_go_to_the_routers_http_data_path_before_any_other_route(tmp_path):
    _, config = rendered(tmp_path)
    routes = _connection_manager(config)["route_config"]["virtual_hosts"][0]["routes"]
    first, second, *others = routes
    post = [{"name": ":method", "string_match": {"exact": "POST"}}]
    assert [(r["match"], r["route"]["cluster"]) for r in (first, second)] == [
        ({"path": path, "headers": post}, "router-http") for path in DATA_PATHS
    ]
    service_route = next(r for r in others if r["match"].get("prefix") == f"/{ROUTER.grpc_service}/")
    for route in (first, second):  # no route timeout (streams run for minutes); retried only when not served
        assert route["route"]["timeout"] == "0s"
        assert route["route"]["retry_policy"] == service_route["route"]["retry_policy"]
    # Nothing else goes there: the admin REST routes, the models, the console and gRPC clients are as they were.
    assert not [r for r in others if r.get("route", {}).get("cluster") == "router-http"]


def test_the_transcoder_is_skipped_for_exactly_the_http_data_paths(tmp_path):
    _, config = rendered(tmp_path)
    hcm = _connection_manager(config)
    [wrapped] = [f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.grpc_json_transcoder"]
    assert wrapped["typed_config"]["@type"] == envoy_matchers.MATCHER_TYPE
    by_method = wrapped["typed_config"]["xds_matcher"]["matcher_tree"]
    assert by_method["input"]["typed_config"]["header_name"] == ":method"
    assert list(by_method["exact_match_map"]["map"]) == ["POST"]  # a GET there is the transcoder's 404
    tree = by_method["exact_match_map"]["map"]["POST"]["matcher"]["matcher_tree"]
    assert tree["input"]["typed_config"]["header_name"] == ":path"  # with a query string: transcoded (to gRPC)
    assert sorted(tree["exact_match_map"]["map"]) == DATA_PATHS
    assert {a["action"]["typed_config"]["@type"] for a in tree["exact_match_map"]["map"].values()} == {
        "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"
    }
    assert "on_no_match" not in wrapped["typed_config"]["xds_matcher"]  # every other path: transcoded
    assert not [f for f in hcm["http_filters"] if f["name"] == "llmagg.unary_calls"]


def test_the_http_data_path_cluster_shares_the_routers_token_breakers_and_health(tmp_path):
    _, config = rendered(
        tmp_path, "--tokens-dir", "/secrets/gateway",
        "--upstream", "router=10.0.0.7:7000", "--upstream", "router=10.0.0.8:7001",
        "--http-upstream", "router=10.0.0.7:8000", "--http-upstream", "router=10.0.0.8:8001",
    )  # fmt: skip
    clusters = _clusters(config)
    grpc, http = clusters["router"], clusters["router-http"]
    protocol = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    assert http["typed_extension_protocol_options"][protocol]["explicit_http_config"] == {"http_protocol_options": {}}
    # Envoy lets its idle connections go before the data port would close them (llmagg.common.http_server).
    idle = http["typed_extension_protocol_options"][protocol]["common_http_protocol_options"]["idle_timeout"]
    assert idle == "60s" and 60 < IDLE_TIMEOUT_S
    grpc_filters = grpc["typed_extension_protocol_options"][protocol]["http_filters"]
    assert http["typed_extension_protocol_options"][protocol]["http_filters"] == grpc_filters
    for same in ("circuit_breakers", "common_lb_config", "outlier_detection", "type"):
        assert http[same] == grpc[same], same
    # gRPC health's Check of the router, spoken over HTTP/2 by the HTTP checker (Envoy's gRPC checker wants an
    # HTTP/2 cluster); healthy on SERVING only. (test_the_http_data_path_is_healthy_only_while_grpc_health_serves)
    [check], [grpc_check] = http["health_checks"], grpc["health_checks"]
    assert {k: v for k, v in check.items() if k != "http_health_check"} == {
        k: v for k, v in grpc_check.items() if k != "grpc_health_check"
    }
    by_hand = check["http_health_check"]
    assert (by_hand["path"], by_hand["method"], by_hand["codec_client_type"]) == (
        "/grpc.health.v1.Health/Check", "POST", "HTTP2"
    )  # fmt: skip
    request = health_pb2.HealthCheckRequest(service=ROUTER.grpc_service).SerializeToString()
    assert bytes.fromhex(by_hand["send"]["text"]) == b"\x00" + len(request).to_bytes(4, "big") + request
    serving = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING).SerializeToString()
    assert [bytes.fromhex(r["text"]) for r in by_hand["receive"]] == [
        b"\x00" + len(serving).to_bytes(4, "big") + serving
    ]
    # Each replica's HTTP endpoint is health checked on that replica's gRPC port: readiness has one truth.
    assert [
        (e["endpoint"]["address"]["socket_address"], e["endpoint"]["health_check_config"]) for e in _endpoints(http)
    ] == [
        ({"address": "10.0.0.7", "port_value": 8000}, {"port_value": 7000}),
        ({"address": "10.0.0.8", "port_value": 8001}, {"port_value": 7001}),
    ]
    assert all("health_check_config" not in e["endpoint"] for e in _endpoints(grpc))
    health = next(f for f in _connection_manager(config)["http_filters"] if f["name"].endswith("health_check"))
    assert "router-http" in health["typed_config"]["cluster_min_healthy_percentages"]


def test_http_replicas_that_do_not_pair_with_the_grpc_ones_are_refused(tmp_path, capsys):
    argv = [
        "--out",
        str(tmp_path / "e.yaml"),
        "--upstream",
        "router=127.0.0.1:7000",
        "--upstream",
        "router=127.0.0.1:7001",
    ]
    assert main([*argv, "--http-upstream", "router=127.0.0.1:8000"]) == 2
    assert "router: 1 HTTP upstreams for 2 gRPC ones (pass --http-upstream router=HOST:PORT for each" in (
        capsys.readouterr().err
    )
    assert main([*argv[:4], "--http-upstream", "ghost=127.0.0.1:8000"]) == 2
    assert "--http-upstream ghost" in capsys.readouterr().err


def test_the_access_log_names_the_cluster_that_served_a_request(tmp_path):
    _, config = rendered(tmp_path)
    [log] = _connection_manager(config)["access_log"]
    fields = log["typed_config"]["log_format"]["json_format"]
    assert fields["upstream"] == "%UPSTREAM_CLUSTER%"  # router-http for the data path, router when transcoded
    assert fields["path"] == "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"


def test_the_http_data_path_is_healthy_only_while_grpc_health_serves(tmp_path):
    """Envoy checks each HTTP endpoint with gRPC health's Check of the router on that replica's gRPC port."""
    (tmp_path / "router.yaml").write_text(yaml.safe_dump(sds_document("router", "a-token")))
    server, statuses = grpc.server(futures.ThreadPoolExecutor(2)), health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(statuses, server)
    grpc_port, admin = server.add_insecure_port("127.0.0.1:0"), free_port()
    server.start()
    cluster = http_cluster(
        "router", [f"127.0.0.1:{free_port()}"], [f"127.0.0.1:{grpc_port}"], ROUTER.grpc_service, str(tmp_path)
    )
    config = {"node": NODE, "admin": {"address": socket(admin)}, "static_resources": {"clusters": [cluster]}}
    (tmp_path / "envoy.yaml").write_text(yaml.safe_dump(config))
    envoy = subprocess.Popen(
        [envoy_binary(), "-c", str(tmp_path / "envoy.yaml"), "--base-id", str(admin), "--log-level", "error"]
    )

    def healthy() -> bool | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/clusters?format=json", timeout=2) as answer:
                [status] = json.loads(answer.read())["cluster_statuses"]
        except OSError:
            return None  # not up yet
        return not status["host_statuses"][0]["health_status"].get("failed_active_health_check")

    try:
        statuses.set(ROUTER.grpc_service, health_pb2.HealthCheckResponse.SERVING)
        wait_for(lambda: healthy() is True, "healthy while SERVING")
        statuses.set(ROUTER.grpc_service, health_pb2.HealthCheckResponse.NOT_SERVING)  # draining
        wait_for(lambda: healthy() is False, "unhealthy once NOT_SERVING")
        statuses.set(ROUTER.grpc_service, health_pb2.HealthCheckResponse.SERVING)
        wait_for(lambda: healthy() is True, "healthy again")
    finally:
        envoy.terminate()
        envoy.wait(10)
        server.stop(0)


def socket(port: int) -> dict:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}
