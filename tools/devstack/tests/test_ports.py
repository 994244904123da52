"""The dev stack's ports: each service's gRPC, metrics and (the router's) HTTP port, per replica, and where
they go (the services' settings, the port checks, the gateway's upstreams)."""

from __future__ import annotations

import yaml

from llmagg.suite import SERVICES
from llmagg_devstack import Ports, Stack

ROUTER_HTTP = next(s.http_port for s in SERVICES if s.name == "router")


def test_the_router_http_port_defaults_from_the_table_and_the_environment_changes_it():
    assert Ports().http_ports("router") == [ROUTER_HTTP] == [50061]
    assert Ports().http_ports("credentials") == [0]  # no HTTP data path
    assert Ports.from_env({"ROUTER_HTTP_PORT": "6061"}).http_ports("router") == [6061]


def test_free_ports_give_every_router_replica_its_own_http_port():
    ports = Ports.free(replicas={"router": 3})
    grpc, http, metrics = ports.grpc_ports("router"), ports.http_ports("router"), ports.metrics_ports("router")
    assert len(grpc) == len(http) == len(metrics) == 3 and all(http)
    assert len({*grpc, *http, *metrics}) == 9
    assert ports.http_ports("agent") == [0]


def test_each_router_replica_is_told_its_http_port_and_it_is_checked_free(tmp_path):
    ports = Ports.free(replicas={"router": 2})
    stack = Stack(tmp_path, ports)
    [router] = [s for s in SERVICES if s.name == "router"]
    assert stack.own_ports(router, 1)["ROUTER_HTTP_PORT"] == str(ports.http_ports("router")[1])
    assert stack.own_ports(router, 0)["ROUTER_HTTP_PORT"] == str(ports.http_ports("router")[0])
    [credentials] = [s for s in SERVICES if s.name == "credentials"]
    assert "CREDENTIALS_HTTP_PORT" not in stack.own_ports(credentials, 0)
    checked = {(port, what) for port, what, _ in stack.ports_to_bind()}
    assert {(port, "router's HTTP") for port in ports.http_ports("router")} <= checked


def test_the_gateway_proxies_to_every_router_replicas_http_port_health_checked_on_its_grpc_port(tmp_path):
    ports = Ports.free(replicas={"router": 2})
    config = yaml.safe_load(Stack(tmp_path, ports).render_gateway_config().read_text())
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    [locality] = clusters["router-http"]["load_assignment"]["endpoints"]
    assert [
        (e["endpoint"]["address"]["socket_address"]["port_value"], e["endpoint"]["health_check_config"]["port_value"])
        for e in locality["lb_endpoints"]
    ] == list(zip(ports.http_ports("router"), ports.grpc_ports("router"), strict=True))


def test_with_router_http_port_0_the_gateway_transcodes_chats_to_grpc_as_before(tmp_path):
    ports = Ports.from_env({"ROUTER_HTTP_PORT": "0"})
    config = yaml.safe_load(Stack(tmp_path, ports).render_gateway_config().read_text())
    assert "router-http" not in {c["name"] for c in config["static_resources"]["clusters"]}
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert not [r for r in routes if r["match"].get("path") == "/v1/chat/completions"]


def test_free_ports_told_as_the_environment_read_back_are_the_same_ports():
    ports = Ports.free()
    assert Ports.from_env(ports.environment()) == ports
