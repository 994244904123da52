"""What the agent counts: runs by how they ended, model calls, tool calls. Labels come from bounded sets only
(statuses, outcomes, the names of the agent's own tools), never from what a client or a model sends."""

from __future__ import annotations

from typing import Protocol


class AgentMetrics(Protocol):
    def run_ended(self, status: str, steps: int, seconds: float) -> None:
        """A run stopped: completed, requires_human_input, error (or cancelled)."""

    def model_call_ended(self, outcome: str, seconds: float) -> None:
        """A model call through the router: ok, failed or deadline."""

    def tool_call_ended(self, tool: str, outcome: str) -> None:
        """A tool call carried out (or refused): the tool (one of the agent's, else "other") and its outcome."""


class NoMetrics:
    def run_ended(self, status: str, steps: int, seconds: float) -> None:
        return None

    def model_call_ended(self, outcome: str, seconds: float) -> None:
        return None

    def tool_call_ended(self, tool: str, outcome: str) -> None:
        return None
