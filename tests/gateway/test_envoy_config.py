"""The generated Envoy config: derived from the descriptor, accepted by Envoy, safe defaults."""

from __future__ import annotations

import subprocess

import yaml

from gateway import generate
from llmagg.devstack.stack import envoy_binary


def render(tmp_path, *extra):
    out = tmp_path / "envoy.yaml"
    generate.main(["--out", str(out), "--upstream", "router=127.0.0.1:50999", *extra])
    return out, yaml.safe_load(out.read_text())


def _connection_manager(config):
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def test_every_llmagg_service_in_the_descriptor_is_transcoded_and_routed(tmp_path):
    services = generate.llmagg_services(generate.DEFAULT_DESCRIPTOR)
    assert "llmagg.router.v1.RouterService" in services
    _, config = render(tmp_path)
    hcm = _connection_manager(config)
    transcoder = next(f for f in hcm["http_filters"] if f["name"].endswith("grpc_json_transcoder"))
    assert transcoder["typed_config"]["services"] == services
    prefixes = [r["match"]["prefix"] for r in hcm["route_config"]["virtual_hosts"][0]["routes"]]
    assert prefixes == [f"/{s}/" for s in services]


def test_envoy_accepts_the_rendered_config(tmp_path):
    out, _ = render(tmp_path, "--listen", "127.0.0.1:18000", "--admin", "127.0.0.1:19901")
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(out), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_streams_are_not_cut_by_a_route_timeout_and_bodies_up_to_32_mib_pass(tmp_path):
    _, config = render(tmp_path)
    hcm = _connection_manager(config)
    assert all(r["route"]["timeout"] == "0s" for r in hcm["route_config"]["virtual_hosts"][0]["routes"])
    transcoder = next(f for f in hcm["http_filters"] if f["name"].endswith("grpc_json_transcoder"))
    assert transcoder["typed_config"]["max_request_body_size"] == 32 * 1024 * 1024
    assert transcoder["typed_config"]["request_validation_options"]["reject_unknown_method"] is True


def test_the_error_filter_runs_before_the_transcoder(tmp_path):
    _, config = render(tmp_path)
    names = [f["name"] for f in _connection_manager(config)["http_filters"]]
    assert names.index("envoy.filters.http.lua") < names.index("envoy.filters.http.grpc_json_transcoder")
    assert names[-1] == "envoy.filters.http.router"


def test_a_service_without_an_address_is_refused(tmp_path):
    try:
        generate.render(
            services=["llmagg.agent.v1.AgentService"], descriptor="x.pb", listen="127.0.0.1:1", admin="127.0.0.1:2",
            upstreams={},
        )  # fmt: skip
    except SystemExit as exc:
        assert "--upstream agent=" in str(exc)
    else:
        raise AssertionError("render accepted a service with no address")
