"""`make demo` keeps its simulated accounts to itself: a later `make run` on the same machine (the same
run directory) lists none of them."""

from __future__ import annotations

import signal
from types import SimpleNamespace

from ..helpers import ADMIN_KEY, admin_call, wait_for
from .make_run import UP, free_ports, launch


def account_aliases(ports: dict[str, int]) -> list[str]:
    status, body = admin_call(
        SimpleNamespace(ports=SimpleNamespace(gateway=ports["gateway"])), "GET", "/v1/admin/accounts"
    )
    assert status == 200, body
    return sorted(account["alias"] for account in body.get("accounts", []))


def stop(launcher) -> None:
    launcher.process.send_signal(signal.SIGTERM)
    wait_for(lambda: launcher.returncode is not None, "the launcher to stop", timeout_s=60)
    launcher.stop()


def test_the_demos_accounts_do_not_show_under_a_later_make_run(tmp_path):
    ports = free_ports()
    env = {"LLMAGG_ADMIN_KEY": ADMIN_KEY}
    demo = launch(tmp_path, ports, env, mode="demo")
    try:
        demo.wait_for_line(UP, 120, "the demo up")
        assert account_aliases(ports) == ["sim-broken-demo", "sim-fast-demo", "sim-ratelimited-demo"]
    finally:
        stop(demo)
    run = launch(tmp_path, ports, env)
    try:
        run.wait_for_line(UP, 120, "the stack up")
        assert account_aliases(ports) == []
    finally:
        stop(run)
