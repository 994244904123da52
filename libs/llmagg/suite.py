"""The service table: every service of the suite, declared once.

The Makefile, the gateway generator, the dev stack (`make run`, `make demo`), the test fixtures and
(when they land) the Kubernetes manifests read this table; adding a service is its folder, its proto
and one row here.

A service's name is its one name everywhere: the folder `services/<name>`, the import package
`llmagg_<name>`, the proto package `llmagg.<name>.v1` with `<Name>Service`, the settings class
`llmagg_<name>.settings.<Name>Settings` reading `<NAME>_*` variables, and the Kubernetes objects.

`python -m llmagg.suite` prints the names, one per line (the Makefile uses it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    port: int  # default gRPC port; <NAME>_PORT changes it
    metrics_port: int  # default Prometheus port (/metrics); <NAME>_METRICS_PORT changes it, 0 turns it off
    calls: tuple[str, ...] = ()  # services it sends requests to: started first, their addresses passed in
    # External dependencies (the dev stack's registry, llmagg_devstack/dependencies.py, starts them
    # first and hands their settings to the services that need them): "openbao", "valkey". A dependency
    # may be optional (valkey: only when the service's settings choose it; see dependencies.py).
    needs: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.name.capitalize()

    @property
    def package(self) -> str:
        return f"llmagg_{self.name}"

    @property
    def proto_package(self) -> str:
        return f"llmagg.{self.name}.v1"

    @property
    def grpc_service(self) -> str:
        """Full name of its gRPC service, as health checks and routes name it."""
        return f"{self.proto_package}.{self.title}Service"

    @property
    def settings_class(self) -> str:
        return f"{self.package}.settings:{self.title}Settings"

    @property
    def env_prefix(self) -> str:
        return f"{self.name.upper()}_"

    def address_variable(self, callee: str) -> str:
        """The setting through which this service is told where `callee` listens."""
        return f"{self.env_prefix}{callee.upper()}_ADDRESS"

    def token_variable(self, peer: str) -> str:
        """The setting holding the service token shared with `peer`: the caller sends it, the callee checks it."""
        return f"{self.env_prefix}{peer.upper()}_TOKEN"


SERVICES: tuple[Service, ...] = (
    # Valkey only with ROUTER_HEALTH_STORE=redis (cooldowns and circuits shared by its replicas).
    Service(
        "router", port=50051, metrics_port=9101, calls=("credentials", "ratelimit", "discovery"), needs=("valkey",)
    ),
    Service("credentials", port=50052, metrics_port=9102, needs=("openbao",)),
    # Valkey only with RATELIMIT_STORE=redis, PostgreSQL only with RATELIMIT_USAGE_STORE=postgres (the dev
    # stack starts them then): memory and SQLite by default.
    Service(
        "ratelimit", port=50053, metrics_port=9103, calls=("credentials", "discovery"), needs=("valkey", "postgres")
    ),
    Service("agent", port=50054, metrics_port=9104, calls=("router",)),
    Service("discovery", port=50055, metrics_port=9105, calls=("credentials",)),
)

BY_NAME = {service.name: service for service in SERVICES}


def service(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no service {name!r} in the service table (llmagg/suite.py)") from None


def start_order(services: tuple[Service, ...] = SERVICES) -> list[Service]:
    """Services ordered so that each comes after every service it calls."""
    by_name = {s.name: s for s in services}
    ordered: list[Service] = []
    visiting: set[str] = set()

    def visit(current: Service) -> None:
        if current in ordered:
            return
        if current.name in visiting:
            raise ValueError(f"the service table has a cycle through {current.name!r}")
        visiting.add(current.name)
        for callee in current.calls:
            if callee not in by_name:
                raise ValueError(f"{current.name!r} calls {callee!r}, which is not in the service table")
            visit(by_name[callee])
        visiting.discard(current.name)
        ordered.append(current)

    for item in services:
        visit(item)
    return ordered


if __name__ == "__main__":
    sys.stdout.write("".join(f"{s.name}\n" for s in SERVICES))
