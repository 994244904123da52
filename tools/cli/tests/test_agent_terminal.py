"""The agent's terminal client is the CLI's (llmagg_cli.agent_terminal): the agent service's package carries
no client, and the `llmagg` CLI needs no service package to run the agent."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _project(folder: str) -> dict:
    return tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]


def test_the_terminal_client_lives_in_the_cli_package():
    assert importlib.util.find_spec("llmagg_cli.agent_terminal") is not None
    assert not (ROOT / "services/agent/llmagg_agent/cli.py").exists()
    assert _project("tools/cli")["scripts"]["llmagg-agent"] == "llmagg_cli.agent_terminal:main"
    assert "scripts" not in _project("services/agent")
    assert "llmagg-agent" not in _project("tools/cli")["dependencies"]
