"""`make run` supervises its children as a cluster would: one that dies (kill -9) is started again and
said so on the terminal, and the stack serves again; only the launcher stopping stops the stack."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmagg.suite import SERVICES
from llmagg_devstack import SimulatorProcess, write_config

from ..helpers import ADMIN_KEY, SIM_KEY, SIM_KEY_ENV, wait_for
from .make_run import UP, alive, child_named, children_of, free_ports, launch

# Every child of the launcher: the services, Envoy, and each dependency (the settings below start all three).
CHILDREN = [*(s.name for s in SERVICES), "gateway", "openbao", "valkey", "postgres"]
WITH_EVERY_DEPENDENCY = {
    "RATELIMIT_STORE": "redis",
    "ROUTER_HEALTH_STORE": "redis",
    "RATELIMIT_USAGE_STORE": "postgres",
}


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """Not under pytest's base folder: run as root, PostgreSQL runs as a user of its own, who must reach its
    data again at each restart, and every new pytest session makes that folder owner-only again."""
    folder = Path(tempfile.mkdtemp(prefix="llmagg-run-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def upstream() -> Iterator[SimulatorProcess]:
    with SimulatorProcess() as simulator:
        yield simulator


def chat_answered(gateway_port: int) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{gateway_port}/v1/chat/completions",
        data=json.dumps({"model": "chat-model", "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_KEY}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status == 200 and bool(json.loads(response.read())["choices"][0]["message"]["content"])
    except (urllib.error.URLError, OSError, ValueError):
        return False


def test_each_child_killed_in_turn_is_restarted_and_the_stack_serves_again(tmp_path, run_dir, upstream):
    config = write_config(
        tmp_path / "config.yaml",
        {
            "providers": [
                {
                    "id": "sim-fast",
                    "base_url": upstream.base_url("sim-fast"),
                    "models": [{"id": "sim-small", "quality": 3, "context_window": 32768, "aliases": ["chat-model"]}],
                }
            ],
            "accounts": [{"provider": "sim-fast", "alias": "sim-fast-acct", "api_key_env": SIM_KEY_ENV}],
        },
    )
    ports = free_ports()
    env = {
        "LLMAGG_RUN_DIR": str(run_dir),
        "LLMAGG_CONFIG": str(config),
        SIM_KEY_ENV: SIM_KEY,
        "LLMAGG_ADMIN_KEY": ADMIN_KEY,
        **WITH_EVERY_DEPENDENCY,
    }
    launcher = launch(tmp_path, ports, env)
    try:
        launcher.wait_for_line(UP, 180, "the stack up")
        assert chat_answered(ports["gateway"])
        for name in CHILDREN:
            pid = child_named(launcher, name)
            assert pid, f"no {name} among the launcher's children"
            os.kill(pid, signal.SIGKILL)
            back = f"{name} is back"
            wait_for(lambda: back in launcher.output() or launcher.returncode is not None, back, timeout_s=90)  # noqa: B023
            assert launcher.returncode is None, launcher.log_tail()
            wait_for(lambda: chat_answered(ports["gateway"]), f"a chat answered after {name} was killed", timeout_s=90)
            assert child_named(launcher, name) not in (None, pid)
        output = launcher.output()
        for name in CHILDREN:
            assert output.count(f"{name} exited") == 1, output
            assert f"{name} exited (signal 9); restarting in 1 s" in output
            assert output.count(f"{name} is back") == 1
        children = children_of(launcher.process.pid)
        assert len(children) == len(CHILDREN)
        launcher.process.send_signal(signal.SIGTERM)  # what Ctrl-C does: the launcher stops every child
        wait_for(lambda: not any(alive(pid) for pid in children), "every child to end", timeout_s=60)
        wait_for(lambda: launcher.returncode is not None, "the launcher to end", timeout_s=30)
        assert launcher.returncode == 0
    finally:
        launcher.stop()
