"""`stream: true` with `model: "ensemble"`: the answer is chosen once every candidate (and the judge)
ended, then sent as OpenAI chunks: one with the role and the whole content (and tool calls), then a
last one with the finish reason, the usage and the `ensemble` report. The servicer ends it with
`data: [DONE]` as any stream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from llmagg_router.domain.request_record import Route


class ChosenAnswerStream:
    """A RoutedStream's face (route, chunks, aclose) over an answer already whole."""

    def __init__(self, body: dict[str, Any], route: Route) -> None:
        self.route = route
        self._body = body

    def _envelope(self) -> dict[str, Any]:
        body = self._body
        envelope = {
            "id": body.get("id") or "",
            "object": "chat.completion.chunk",
            "created": body.get("created") or int(time.time()),
            "model": body.get("model") or self.route.model,
        }
        if body.get("provider"):
            envelope["provider"] = body["provider"]
        return envelope

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        choice = (self._body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        yield {**self._envelope(), "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        last = {
            **self._envelope(),
            "choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason") or "stop"}],
            "usage": self._body.get("usage"),
            "ensemble": self._body.get("ensemble"),
        }
        yield last

    async def aclose(self) -> None:
        """Nothing to release: the candidates' and the judge's attempts settled before the first chunk."""
