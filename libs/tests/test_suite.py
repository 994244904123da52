"""The service table: one name per service, and a start order in which callees come first."""

from __future__ import annotations

import pytest

from llmagg.suite import SERVICES, Service, service, start_order


def test_a_services_one_name_gives_its_package_proto_settings_and_variables():
    ratelimit = Service("ratelimit", port=50053, metrics_port=9103, calls=("credentials",))
    assert ratelimit.package == "llmagg_ratelimit"
    assert ratelimit.grpc_service == "llmagg.ratelimit.v1.RatelimitService"
    assert ratelimit.settings_class == "llmagg_ratelimit.settings:RatelimitSettings"
    assert ratelimit.env_prefix == "RATELIMIT_"
    assert ratelimit.address_variable("credentials") == "RATELIMIT_CREDENTIALS_ADDRESS"


def test_services_start_after_the_services_they_call():
    table = (
        Service("router", 1, 0, calls=("ratelimit", "credentials")),
        Service("ratelimit", 2, 0, calls=("credentials",)),
        Service("credentials", 3, 0),
    )
    assert [s.name for s in start_order(table)] == ["credentials", "ratelimit", "router"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ((Service("a", 1, 0, calls=("b",)), Service("b", 2, 0, calls=("a",))), "cycle"),
        ((Service("a", 1, 0, calls=("ghost",)),), "not in the service table"),
    ],
)
def test_a_table_that_cannot_start_is_refused(table, message):
    with pytest.raises(ValueError, match=message):
        start_order(table)


def test_names_and_ports_are_unique_and_lookups_name_the_table():
    assert len({s.name for s in SERVICES}) == len(SERVICES)
    assert all(s.metrics_port for s in SERVICES)
    ports = [p for s in SERVICES for p in (s.port, s.metrics_port, s.http_port) if p]
    assert len(set(ports)) == len(ports)  # gRPC, metrics and HTTP ports all apart
    assert [(s.name, s.http_port) for s in SERVICES if s.http_port] == [("router", 50061)]
    with pytest.raises(KeyError, match=r"suite\.py"):
        service("nope")
