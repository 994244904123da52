"""The console's routes in the rendered config: every file of the folder, served with its policy, keyless."""

from __future__ import annotations

import json

import pytest
import yaml

from llmagg_gateway.__main__ import main
from llmagg_gateway.console_routes import (
    CONSOLE_DIR,
    CONTENT_SECURITY_POLICY,
    DEFAULT_JAEGER_UI,
    SETTINGS_PATH,
    console_files,
    console_routes,
)


def routes_of(tmp_path, *extra) -> list[dict]:
    out = tmp_path / "envoy.yaml"
    assert main(["--out", str(out), *extra]) == 0
    hcm = yaml.safe_load(out.read_text())["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    return hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]


def test_every_console_file_is_a_keyless_route_ahead_of_the_services(tmp_path):
    routes = routes_of(tmp_path)
    files = sorted(p.name for p in CONSOLE_DIR.iterdir())
    # (the router's HTTP data path has exact paths too, routed: test_envoy_config)
    served = {r["match"]["path"]: r for r in routes if "path" in r["match"] and "route" not in r}
    assert sorted(served) == sorted(["/ui", "/ui/", SETTINGS_PATH, *(f"/ui/{name}" for name in files)])
    first_service = next(i for i, r in enumerate(routes) if "route" in r and "prefix" in r["match"])
    assert all(routes.index(r) < first_service for r in served.values())
    for path, route in served.items():
        name = "index.html" if path in ("/ui", "/ui/") else path.removeprefix("/ui/")
        if path != SETTINGS_PATH:
            body = (CONSOLE_DIR / name).read_text()
            assert route["direct_response"] == {"status": 200, "body": {"inline_string": body}}
        headers = {h["header"]["key"]: h["header"]["value"] for h in route["response_headers_to_add"]}
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert headers["cache-control"] == "no-store" and headers["x-frame-options"] == "DENY"
        assert set(route["typed_per_filter_config"]) == {
            "llmagg.client-key-routing",
            "llmagg.client-key-hashes",
            "envoy.filters.http.ext_authz",
            "envoy.filters.http.grpc_json_transcoder",
        }


def test_without_client_auth_there_is_no_ext_authz_to_skip(tmp_path):
    for route in console_routes(client_auth=False):
        assert set(route.get("typed_per_filter_config", {})) <= {"envoy.filters.http.grpc_json_transcoder"}


def test_an_admin_body_that_is_not_json_is_refused_before_any_service(tmp_path):
    [rule] = [r for r in routes_of(tmp_path) if r.get("direct_response", {}).get("status") == 415]
    assert rule["match"]["prefix"] == "/v1/admin/"
    assert set(rule["typed_per_filter_config"]) == {
        "envoy.filters.http.grpc_json_transcoder"
    }  # the key is checked first


def test_a_file_the_console_cannot_serve_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="serves only"):
        console_files(tmp_path)


def settings_of(tmp_path, *extra) -> dict:
    [route] = [r for r in routes_of(tmp_path, *extra) if r["match"].get("path") == SETTINGS_PATH]
    headers = {h["header"]["key"]: h["header"]["value"] for h in route["response_headers_to_add"]}
    assert headers["content-type"] == "application/json"
    return json.loads(route["direct_response"]["body"]["inline_string"])


def test_the_console_links_traces_to_jaeger_on_localhost_unless_told_another_ui(tmp_path):
    assert settings_of(tmp_path) == {"jaeger_ui": DEFAULT_JAEGER_UI} == {"jaeger_ui": "http://localhost:16686"}
    assert settings_of(tmp_path, "--jaeger-ui", "https://jaeger.example.org/tracing/") == {
        "jaeger_ui": "https://jaeger.example.org/tracing"
    }


@pytest.mark.parametrize("url", ["javascript:alert(1)", "jaeger:16686", "http://jaeger/?q=1", "ftp://jaeger"])
def test_a_jaeger_ui_that_is_no_http_url_is_refused(tmp_path, capsys, url):
    assert main(["--out", str(tmp_path / "envoy.yaml"), "--jaeger-ui", url]) == 2
    assert "Jaeger UI" in capsys.readouterr().err
