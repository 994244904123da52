"""A child that cannot listen because its port is taken is reported in one clear line, not its traceback."""

from __future__ import annotations

import socket
import sys

import pytest

from llmagg_devstack.processes import ManagedProcess, ProcessError, port_in_use


def test_a_port_held_without_listening_is_in_use():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        assert port_in_use(port)
    assert not port_in_use(port)


def test_a_child_that_cannot_bind_its_port_says_so_in_one_line():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        child = ManagedProcess(
            "server", [sys.executable, "-c", f"import socket; socket.socket().bind(('127.0.0.1', {port}))"]
        )
        try:
            with pytest.raises(ProcessError) as failed:
                child.wait_until(lambda: False, 30, "listening")
        finally:
            child.stop()
    message = str(failed.value)
    assert message.startswith("server could not listen: a port it needs is already in use")
    assert message.endswith("It said: OSError: [Errno 98] Address already in use")
    assert "Traceback" not in message
