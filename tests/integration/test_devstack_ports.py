"""Ports for children: never from the kernel's ephemeral range, never one another process on the machine holds."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from llmagg_devstack import ephemeral_range, free_port


def test_ports_come_from_below_theephemeral_range_and_are_not_handed_out_twice():
    low, _ = ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(10_000 <= port < low for port in ports)


def test_a_port_this_process_holds_is_not_handed_to_another():
    held = free_port()
    # The other process draws `held` first, then any other port.
    script = textwrap.dedent(f"""
        import random
        draws = iter([{held}, {held}, 20_001, 20_002, 20_003])
        random.SystemRandom.randrange = lambda self, low, high: next(draws)
        from llmagg_devstack import free_port
        print(free_port())
    """)
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert int(other.stdout) != held
    assert int(other.stdout) in (20_001, 20_002, 20_003)
