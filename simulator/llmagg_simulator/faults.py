"""Fault objects: what a simulated provider does with a request, parsed from the control API or the CLI."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

BEHAVIOURS = frozenset(
    {
        "ok",
        "429",
        "500",
        "503",
        "401",
        "400",
        "hang",
        "slow_first_byte",
        "cut_stream",
        "stream_error",
        "malformed_json",
        "context_length",
        "answer",
        "410",  # the model is gone: HTTP 410 in the dialect's error shape
        "model_not_found",  # the dialect's 404 for a model it does not serve
        "echo_key",  # a hostile provider: a normal answer that quotes the key it received everywhere
    }
)
# Parameters any fault may carry; each only matters to the behaviour named in its comment.
PARAMETERS = {
    "retry_after": float,  # 429: seconds in retry-after, x-ratelimit-reset-requests and the message
    "delay_s": float,  # slow_first_byte: seconds before the response starts
    "after_chunks": int,  # cut_stream, stream_error: content events sent after the opening ones before it breaks
    "max_hang_s": float,  # hang: the connection is closed unanswered after this long
}


# What an `answer` fault says in place of the simulated model's own reply (OpenAI chat completions).
ANSWER_KEYS = frozenset({"content", "tool_calls"})


class FaultError(ValueError):
    """A fault object the simulator cannot follow; the control API answers it with a 400."""


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: str  # the JSON text the model sends (kept as given when scripted as a string, even if broken)
    id: str | None = None  # None: the simulator makes one up

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "id": self.id}


@dataclass(frozen=True)
class ScriptedAnswer:
    """The reply of an `answer` fault: text, tool calls, or both."""

    content: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {"content": self.content, "tool_calls": [call.describe() for call in self.tool_calls]}


@dataclass(frozen=True)
class Fault:
    type: str = "ok"
    retry_after: float = 1.0
    delay_s: float = 1.0
    after_chunks: int = 2
    max_hang_s: float = 600.0
    answer: ScriptedAnswer | None = field(default=None)  # only for `answer`

    def describe(self) -> dict[str, Any]:
        described = {"type": self.type, **{name: getattr(self, name) for name in PARAMETERS}}
        if self.answer is not None:
            described.update(self.answer.describe())
        return described


def _number(key: str, value: Any) -> float | int:
    kind = PARAMETERS[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise FaultError(f"`{key}` must be a non-negative number; got {value!r}")
    if kind is int:
        if value != int(value):
            raise FaultError(f"`{key}` must be a whole number; got {value!r}")
        return int(value)
    return float(value)


def _tool_call(raw: Any, where: str) -> ScriptedToolCall:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise FaultError(f"{where} needs a `name` (the function called); got {raw!r}")
    unknown = set(raw) - {"name", "arguments", "id"}
    if unknown:
        raise FaultError(f"{where} has unknown keys {sorted(unknown)}; known: name, arguments, id")
    arguments = raw.get("arguments", {})
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments)
    elif not isinstance(arguments, str):
        raise FaultError(f"{where}.arguments must be an object or the JSON text to send; got {arguments!r}")
    call_id = raw.get("id")
    if call_id is not None and (not isinstance(call_id, str) or not call_id):
        raise FaultError(f"{where}.id must be a non-empty string; got {call_id!r}")
    return ScriptedToolCall(raw["name"], arguments, call_id)


def _answer(raw: dict[str, Any]) -> ScriptedAnswer:
    content = raw.get("content")
    if content is not None and not isinstance(content, str):
        raise FaultError(f"`content` must be a string; got {content!r}")
    calls = raw.get("tool_calls", [])
    if not isinstance(calls, list):
        raise FaultError(f"`tool_calls` must be a list of {{name, arguments, id?}}; got {calls!r}")
    tool_calls = tuple(_tool_call(call, f"tool_calls[{index}]") for index, call in enumerate(calls))
    if content is None and not tool_calls:
        raise FaultError("an `answer` needs `content`, `tool_calls` or both")
    return ScriptedAnswer(content, tool_calls)


def parse_fault(raw: Any) -> tuple[Fault, int]:
    """A fault from `"500"` or `{"type": "429", "retry_after": 2, "count": 3}`, and how many requests it covers."""
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict) or raw.get("type") not in BEHAVIOURS:
        raise FaultError(f"a fault needs `type`, one of {sorted(BEHAVIOURS)}; got {raw!r}")
    scripting = raw["type"] == "answer"
    unknown = set(raw) - {"type", "count", *PARAMETERS, *(ANSWER_KEYS if scripting else ())}
    if unknown:
        known = ", ".join(["count", *PARAMETERS, *(sorted(ANSWER_KEYS) if scripting else ())])
        raise FaultError(f"unknown fault keys {sorted(unknown)}; known: {known}")
    count = raw.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise FaultError(f"`count` must be a whole number of at least 1; got {count!r}")
    parameters = {key: _number(key, value) for key, value in raw.items() if key in PARAMETERS}
    answer = _answer(raw) if scripting else None
    return Fault(type=raw["type"], answer=answer, **parameters), count


def parse_behaviour_option(text: str) -> tuple[str, Fault]:
    """`NAME=TYPE[,key=value...]` from `--provider`, e.g. `sim-slow=slow_first_byte,delay_s=0.2`."""
    name, separator, spec = text.partition("=")
    if not name or not separator or not spec:
        raise FaultError(f"expected NAME=BEHAVIOUR, got {text!r}")
    fault_type, *assignments = spec.split(",")
    raw: dict[str, Any] = {"type": fault_type}
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        if key not in PARAMETERS:
            raise FaultError(f"unknown parameter {key!r} in {text!r}; known: {', '.join(PARAMETERS)}")
        try:
            raw[key] = float(value)
        except ValueError:
            raise FaultError(f"expected key=number after the behaviour, got {assignment!r}") from None
    fault, _ = parse_fault(raw)
    return name, fault
