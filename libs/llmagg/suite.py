"""The service table: every service of the suite, declared once.

Who may call whom (and the token each pair shares, `<NAME>_<PEER>_TOKEN`), which RPCs each peer may call
(`rpcs`) and, with the protos' `(llmagg.admin_only)` option, what the gateway keeps for admin keys are
derived from it (llmagg.rpcs, llmagg.common.caller_auth). The Makefile, the gateway generator, the dev stack (`make run`, `make demo`), the test fixtures and
(when they land) the Kubernetes manifests read this table; adding a service is its folder, its proto
and one row here.

A service's name is its one name everywhere: the folder `services/<name>`, the import package
`llmagg_<name>`, the proto package `llmagg.<name>.v1` with `<Name>Service`, the settings class
`llmagg_<name>.settings.<Name>Settings` reading `<NAME>_*` variables, and the Kubernetes objects.

`python -m llmagg.suite` prints the names, one per line (the Makefile uses it).
"""

from __future__ import annotations

import graphlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Service:
    name: str
    port: int  # default gRPC port; <NAME>_PORT changes it
    metrics_port: int  # default Prometheus port (/metrics); <NAME>_METRICS_PORT changes it, 0 turns it off
    # The OpenAI REST data path (HTTP/1.1) the gateway proxies chat and embeddings to; <NAME>_HTTP_PORT
    # changes it; 0: none.
    http_port: int = 0
    calls: tuple[str, ...] = ()  # services it sends requests to: started first, their addresses passed in
    # The RPCs it calls on a callee that answers its peers per RPC (credentials, ratelimit): the callee
    # answers this service those only (llmagg.rpcs). A callee not named here: every RPC.
    rpcs: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    # External dependencies (the dev stack's registry, llmagg_devstack/dependencies.py, starts them
    # first and hands their settings to the services that need them): "openbao", "valkey". A dependency
    # may be optional (valkey: only when the service's settings choose it; see dependencies.py).
    needs: tuple[str, ...] = ()
    # What the dev stack (make run, the tests) sets for it, by variable without the prefix; `$run_dir`
    # (the run directory) and `$root` (the checkout) are filled in. `dev_defaults` only where the
    # environment does not set the variable itself.
    dev: Mapping[str, str] = field(default_factory=dict, compare=False)
    dev_defaults: Mapping[str, str] = field(default_factory=dict, compare=False)

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
        "router",
        port=50051,
        metrics_port=9101,
        http_port=50061,
        calls=("credentials", "ratelimit", "discovery"),
        rpcs={
            "credentials": ("ListAccounts", "Lease", "ReportOutcome"),
            "ratelimit": ("Reserve", "Settle", "Headroom"),
        },
        needs=("valkey",),
        dev={"KEY_SOURCE": "credentials", "QUOTA_LEDGER": "ratelimit", "CATALOG": "discovery"},
    ),
    # The dev stack's first admin key is written to the run directory.
    Service(
        "credentials", port=50052, metrics_port=9102, needs=("openbao",), dev={"ADMIN_KEY_FILE": "$run_dir/admin-key"}
    ),
    # Valkey only with RATELIMIT_STORE=redis, PostgreSQL only with RATELIMIT_USAGE_STORE=postgres (the dev
    # stack starts them then): memory and SQLite by default.
    Service(
        "ratelimit",
        port=50053,
        metrics_port=9103,
        calls=("credentials", "discovery"),
        rpcs={"credentials": ("ListAccounts",)},  # the accounts' limit overrides
        needs=("valkey", "postgres"),
        dev={"USAGE_PATH": "$run_dir/usage.sqlite3", "CATALOG": "discovery"},
    ),
    # The agent never reaches the run directory (the admin key, OpenBao's data); admin keys are granted
    # the checkout unless the environment grants roots itself.
    Service(
        "agent",
        port=50054,
        metrics_port=9104,
        calls=("router",),
        dev={"PROTECTED_PATHS": '["$run_dir"]'},
        dev_defaults={"WORKSPACE_ROOTS": '{"admin": ["$root"]}'},
    ),
    Service(
        "discovery",
        port=50055,
        metrics_port=9105,
        calls=("credentials",),
        rpcs={"credentials": ("ListAccounts", "Lease")},  # it reads providers' model lists with the accounts' keys
        dev={"KEY_SOURCE": "credentials", "SQLITE_PATH": "$run_dir/discovery.sqlite3"},
    ),
)

BY_NAME = {service.name: service for service in SERVICES}


def service(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no service {name!r} in the service table (llmagg/suite.py)") from None


def start_order(services: tuple[Service, ...] = SERVICES) -> list[Service]:
    """Services ordered so that each comes after every service it calls (table order among equals)."""
    by_name = {s.name: s for s in services}
    graph = graphlib.TopologicalSorter()
    for current in services:
        for callee in current.calls:
            if callee not in by_name:
                raise ValueError(f"{current.name!r} calls {callee!r}, which is not in the service table")
        graph.add(current.name, *current.calls)
    try:
        return [by_name[name] for name in graph.static_order()]
    except graphlib.CycleError as cycle:
        raise ValueError(f"the service table has a cycle through {cycle.args[1][0]!r}") from None


if __name__ == "__main__":
    sys.stdout.write("".join(f"{s.name}\n" for s in SERVICES))
