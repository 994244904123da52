"""A port `make run` needs is taken (often by the last stack, still stopping): every start path says so in
one clear line, before anything starts, rather than a child dying with a bind traceback."""

from __future__ import annotations

import socket

import pytest

from ..helpers import wait_for
from .make_run import free_ports, launch

# (which port, what the line calls it): a service's, its metrics', Envoy's two and a dependency's.
PORTS = [
    ("router", "router"),
    ("discovery metrics", "discovery's metrics"),
    ("gateway", "the gateway"),
    ("admin", "the gateway's admin"),
    ("openbao", "openbao"),
]


@pytest.mark.parametrize(("port", "what"), PORTS, ids=[port for port, _ in PORTS])
def test_a_port_held_by_a_stopping_process_is_reported_before_anything_starts(tmp_path, port, what):
    """Bound but no longer accepting (a server that closed its listener's backlog while it drains):
    nothing answers a connection there, yet nobody else may bind it."""
    ports = free_ports()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", ports[port]))
        launcher = launch(tmp_path, ports, {"LLMAGG_PORT_WAIT_S": "1"})
        try:
            wait_for(lambda: launcher.returncode is not None, "the launcher to give up", timeout_s=120)
        finally:
            launcher.stop()
    output = launcher.output()
    assert launcher.returncode == 1, output
    assert f"port {ports[port]} for {what} is already in use" in output
    assert "Traceback" not in output and "is up" not in output
    assert sorted(path.name for path in (tmp_path / "run").glob("*.log")) == []
