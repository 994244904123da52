"""What the agent's unit tests share: a scripted model, answers in OpenAI's shape, a store that counts saves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from llmagg.common.errors import ServiceError
from llmagg_agent.domain.model import ModelReply, ModelRequest
from llmagg_agent.domain.threads import Thread

MODEL_USED = "sim/sim-small"


def call(name: str, arguments: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    """A tool call as a model sends it; a string is sent as the arguments' text verbatim."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id or f"call_{name}", "type": "function", "function": {"name": name, "arguments": text}}


def calls(*tool_calls: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    return {"role": "assistant", "content": content, "tool_calls": list(tool_calls)}


def text(content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


class ScriptedModel:
    """A ModelClient answering from a script: each entry an assistant message or a ServiceError to raise.

    Every request is kept. `gate` (when set) holds each call until the test releases it; `entered` is set
    whenever a call is waiting there.
    """

    def __init__(self, script: Sequence[dict[str, Any] | ServiceError] = ()) -> None:
        self.script = list(script)
        self.requests: list[ModelRequest] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.on_call: Any = None  # called with the request before answering (advance a clock, ...)

    def add(self, *entries: dict[str, Any] | ServiceError) -> None:
        self.script.extend(entries)

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        if self.on_call is not None:
            self.on_call(request)
        if self.gate is not None:
            self.entered.set()
            await self.gate.wait()
        if not self.script:
            raise AssertionError("the model was called more often than scripted")
        entry = self.script.pop(0)
        if isinstance(entry, ServiceError):
            raise entry
        return ModelReply(json.loads(json.dumps(entry)), MODEL_USED)

    def tool_results(self, request_index: int) -> list[tuple[str, str]]:
        """(tool name, content) of the tool messages the request_index-th request ended with."""
        messages = self.requests[request_index].messages
        tail = []
        for message in reversed(messages):
            if message["role"] != "tool":
                break
            tail.append((message["name"], message["content"]))
        return list(reversed(tail))

    def offered(self, request_index: int = 0) -> list[str]:
        return [tool["function"]["name"] for tool in self.requests[request_index].tools]


def roles(thread: Thread) -> list[str]:
    return [m["role"] for m in thread.messages]


class CountingStore:
    """Wraps a ThreadStore and records the status and message count of every save (the checkpoints)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.saves: list[tuple[str, int]] = []

    async def save(self, thread: Thread) -> None:
        await self.inner.save(thread)
        self.saves.append((thread.status.value, len(thread.messages)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
