"""What the agent's cross-process tests share: project folders, scripted model answers, a restart, the requests
the simulated model received."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmagg.suite import service
from llmagg_devstack import ManagedProcess, SimulatorProcess, Stack

from .helpers import AGENT_TEST_ENV, post_raw, scenario

AGENT_PROVIDER = "agent-sim"
_projects = itertools.count()


def new_project(workspaces: Path, files: dict[str, str] | None = None) -> Path:
    """A fresh project folder under the allowed workspace root, holding `files`."""
    folder = workspaces / f"project-{next(_projects)}"
    folder.mkdir()
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str) -> dict[str, Any]:
    return {"name": name, "arguments": arguments, "id": call_id}


def calls(*tool_calls: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    """The simulated model's next answer: these tool calls (and text)."""
    answer: dict[str, Any] = {"type": "answer", "tool_calls": list(tool_calls)}
    if content is not None:
        answer["content"] = content
    return answer


def says(content: str) -> dict[str, Any]:
    """The simulated model's next answer: this text, no tool call."""
    return {"type": "answer", "content": content}


def script_model(simulator: SimulatorProcess, *answers: dict[str, Any]) -> None:
    """Forget what the agent's model was asked so far, then queue its next answers."""
    scenario(simulator, "agent-model")
    simulator.script(AGENT_PROVIDER, list(answers))


def model_requests(simulator: SimulatorProcess) -> list[dict[str, Any]]:
    """The chat bodies the agent's model received (through the router), in arrival order."""
    return [request["body"] for request in simulator.requests(AGENT_PROVIDER)]


def tool_results(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(tool_call_id, name, content) of the tool messages a request ended with."""
    tail = []
    for message in reversed(body["messages"]):
        if message["role"] != "tool":
            break
        tail.append((message["tool_call_id"], message.get("name", ""), message["content"]))
    return list(reversed(tail))


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def agent_env(workspaces: Path, **settings: str) -> dict[str, str]:
    return {**AGENT_TEST_ENV, "AGENT_WORKSPACE_ROOTS": str(workspaces), **settings}


def restart_agent(stack: Stack, env: dict[str, str]) -> ManagedProcess:
    """Stop the agent process (SIGTERM) and start a new one on the same port and database."""
    [process] = [p for p in stack.processes if p.name == "agent"]
    process.stop()
    assert process.returncode == 0, process.log_tail()
    stack.processes.remove(process)
    return stack.start_service(service("agent"), env)


def openai_error_trailer(error: Any) -> dict[str, Any]:
    """The OpenAI error JSON a failed gRPC call carried in its trailing metadata."""
    return json.loads(dict(error.trailing_metadata())["x-openai-error"])["error"]


@dataclass(frozen=True)
class RestClient:
    """The gateway's REST API with a client key."""

    base: str  # http://127.0.0.1:PORT
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def url(self, path: str) -> str:
        return self.base + path

    def post(self, path: str, body: bytes | dict[str, Any]) -> tuple[int, dict, dict]:
        """(status, headers, JSON body) of a POST of `body` (bytes are sent as they are)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return post_raw(self.url(path), data, self.auth)

    def call(self, method: str, path: str) -> tuple[int, dict]:
        request = urllib.request.Request(self.url(path), method=method, headers=self.auth)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
