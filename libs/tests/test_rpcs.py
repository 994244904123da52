"""Who may call which RPC comes from the protos' (llmagg.admin_only) option and the service table."""

from __future__ import annotations

from llmagg.rpcs import ADMIN_REST_PREFIX, admin_only_methods, admin_paths, descriptor, is_admin_only, rest_route
from llmagg.suite import SERVICES, service


def test_the_gateway_keeps_for_admin_keys_what_the_protos_mark_admin_only():
    assert set(admin_paths()) == {
        "/v1/admin/",
        "/llmagg.credentials.v1.CredentialsService/",
        "/llmagg.router.v1.RouterService/GetRoutingState",
        "/llmagg.discovery.v1.DiscoveryService/",
        "/llmagg.ratelimit.v1.RatelimitService/GetQuotaWindows",
        "/llmagg.ratelimit.v1.RatelimitService/ListRecentAttempts",
    }
    assert admin_only_methods(service("router")) == ("GetRoutingState",)
    assert "Lease" not in admin_only_methods(service("credentials"))


def test_admin_only_rest_routes_and_only_they_live_under_the_admin_prefix():
    for row in SERVICES:
        for method in descriptor(row).methods:
            route = rest_route(method)
            if route:
                assert route.startswith(ADMIN_REST_PREFIX) == is_admin_only(method), f"{row.name}.{method.name}"
