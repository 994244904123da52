"""Promise 6: `make run` owns its children: they end with it however it ends, and a busy port is
reported before anything starts."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from llmagg.suite import SERVICES
from llmagg_devstack import needed

from ..helpers import wait_for
from .make_run import UP, alive, children_of, free_ports, launch


@pytest.fixture
def ports() -> dict[str, int]:
    return free_ports()


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
