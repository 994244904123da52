"""What the make-run tests share: `python -m llmagg_devstack run|demo` on ports of its own, and its children."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path

from llmagg.suite import SERVICES
from llmagg_devstack import STARTERS, ManagedProcess, free_port

UP = re.compile(r"llm-aggregator is up")


def free_ports() -> dict[str, int]:
    return {
        "gateway": free_port(),
        "admin": free_port(),
        **{s.name: free_port() for s in SERVICES},
        **{f"{s.name} metrics": free_port() for s in SERVICES},
        **{f"{s.name} http": free_port() for s in SERVICES if s.http_port},
        **{name: free_port() for name in STARTERS},
    }


def launch(
    tmp_path: Path, ports: dict[str, int], env: Mapping[str, str] | None = None, mode: str = "run"
) -> ManagedProcess:
    environment = {
        "LLMAGG_RUN_DIR": str(tmp_path / "run"),
        "GATEWAY_PORT": str(ports["gateway"]),
        "GATEWAY_ADMIN_PORT": str(ports["admin"]),
        **{f"{s.env_prefix}PORT": str(ports[s.name]) for s in SERVICES},
        **{f"{s.env_prefix}METRICS_PORT": str(ports[f"{s.name} metrics"]) for s in SERVICES},
        **{f"{s.env_prefix}HTTP_PORT": str(ports[f"{s.name} http"]) for s in SERVICES if s.http_port},
        **{f"{name.upper()}_PORT": str(ports[name]) for name in STARTERS},
        **(env or {}),
    }  # every port its own: another `make test` beside this one uses the defaults of none
    return ManagedProcess(f"launcher-{mode}", [sys.executable, "-m", "llmagg_devstack", mode], env=environment)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _child_name(pid: int) -> str | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    # valkey-server sets its title to one word with spaces ("valkey-server 127.0.0.1:PORT")
    words = [Path(word).name for arg in argv for word in arg.decode().split()]
    for service in SERVICES:
        if service.package in words:
            return service.name
    programs = {"envoy": "gateway", "bao": "openbao", "valkey-server": "valkey", "postgres": "postgres"}
    return programs.get(words[0]) if words else None


def child_named(launcher: ManagedProcess, name: str) -> int | None:
    """The pid of the launcher's running child `name` (a service, "gateway" or a dependency)."""
    for pid in children_of(launcher.process.pid):
        if alive(pid) and _child_name(pid) == name:
            return pid
    return None
