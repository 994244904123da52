"""Promise 6: `make run` owns its children: they end with it however it ends, and a busy port is
reported before anything starts."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from llmagg.suite import SERVICES
from llmagg_devstack.dependencies import STARTERS, needed
from llmagg_devstack.processes import ManagedProcess, free_port

from ..helpers import wait_for

UP = re.compile(r"llm-aggregator is up")


def launch(tmp_path: Path, ports: dict[str, int]) -> ManagedProcess:
    env = {
        "LLMAGG_RUN_DIR": str(tmp_path / "run"),
        "GATEWAY_PORT": str(ports["gateway"]),
        "GATEWAY_ADMIN_PORT": str(ports["admin"]),
        **{f"{s.env_prefix}PORT": str(ports[s.name]) for s in SERVICES},
        **{f"{s.env_prefix}METRICS_PORT": str(ports[f"{s.name} metrics"]) for s in SERVICES},
        **{f"{name.upper()}_PORT": str(ports[name]) for name in STARTERS},
    }  # every port its own: another `make test` beside this one uses the defaults of none
    return ManagedProcess("launcher", [sys.executable, "-m", "llmagg_devstack", "run"], env=env)


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


@pytest.fixture
def ports() -> dict[str, int]:
    return {
        "gateway": free_port(),
        "admin": free_port(),
        **{s.name: free_port() for s in SERVICES},
        **{f"{s.name} metrics": free_port() for s in SERVICES},
        **{name: free_port() for name in STARTERS},
    }


@pytest.mark.parametrize("ending", [signal.SIGHUP, signal.SIGKILL], ids=["terminal-closed", "killed"])
def test_the_stack_ends_with_its_launcher(tmp_path, ports, ending):
    launcher = launch(tmp_path, ports)
    try:
        launcher.wait_for_line(UP, 90, "the stack up")
        children = children_of(launcher.process.pid)
        assert len(children) == len(needed(list(SERVICES))) + len(SERVICES) + 1  # dependencies, services, Envoy
        os.kill(launcher.process.pid, ending)
        wait_for(lambda: not any(alive(pid) for pid in children), "every child to end", timeout_s=30)
    finally:
        launcher.stop()


def test_a_busy_port_is_reported_before_anything_starts(tmp_path, ports):
    with socket.create_server(("127.0.0.1", ports["router"])):
        launcher = launch(tmp_path, ports)
        try:
            wait_for(lambda: launcher.returncode is not None, "the launcher to give up", timeout_s=60)
        finally:
            launcher.stop()
    assert launcher.returncode == 1
    assert f"port {ports['router']} for router is already in use" in launcher.output()
    assert "is up" not in launcher.output() and not (tmp_path / "run" / "router.log").exists()
