"""How the agent reaches models: through the router, behind these interfaces (adapters/router_client.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelRequest:
    """One chat completion with tools, in OpenAI's shapes."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    model: str
    provider: str | None
    model_quality: str | None
    timeout_s: float
    client_id: str | None = None  # passed on so the router can account the call to the client


@dataclass(frozen=True)
class ModelReply:
    message: dict[str, Any]  # the assistant message: content and/or tool_calls
    model_used: str  # "provider/model" that answered


class ModelClient(Protocol):
    async def complete(self, request: ModelRequest) -> ModelReply:
        """The model's answer; a ServiceError (the router's, with its status and message) when there is none."""


@dataclass
class RelayedChat:
    """A chat completion relayed as the router answered it: who answered (response headers), then its bytes."""

    headers: tuple[tuple[str, str], ...]
    pieces: AsyncIterator[tuple[str, bytes]]  # (content type, bytes): one JSON body, or SSE events


class ChatRelay(Protocol):
    async def relay(self, body: dict[str, Any], client_id: str | None) -> RelayedChat:
        """Send an OpenAI chat body to the router; ServiceError when it refuses before answering."""
