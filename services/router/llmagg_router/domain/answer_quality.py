"""What an answer itself says of its quality, without a model call: empty, cut short by the token
limit, a refusal, tool calls whose arguments are not JSON or name no offered tool, JSON asked for and
not given. None when the answer shows nothing either way (client feedback may still judge it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

EMPTY, TRUNCATED, REFUSED, INVALID = 0.0, 0.3, 0.1, 0.0
_REFUSAL = re.compile(
    r"^\s*(i'?m sorry|sorry,|i (can ?not|can't|won't|am unable to|'m unable to)|as an ai\b)", re.IGNORECASE
)


def answer_quality(request_body: Mapping[str, Any], response: Mapping[str, Any]) -> float | None:
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return EMPTY
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
    content = message.get("content") if isinstance(message.get("content"), str) else ""
    tool_calls = message.get("tool_calls") or ()
    if tool_calls:
        return 1.0 if _valid_tool_calls(tool_calls, request_body.get("tools")) else INVALID
    if not content.strip():
        return EMPTY
    if choice.get("finish_reason") == "length":
        return TRUNCATED
    if _REFUSAL.search(content[:200]):
        return REFUSED
    response_format = request_body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") in ("json_object", "json_schema"):
        return 1.0 if _is_json(content) else INVALID
    return None


def _valid_tool_calls(calls: Any, tools: Any) -> bool:
    offered = {
        t["function"].get("name")
        for t in tools or ()
        if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
    }
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or (offered and function.get("name") not in offered):
            return False
        if not _is_json(function.get("arguments") or "{}"):
            return False
    return True


def _is_json(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    stripped = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```")
    try:
        orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return False
    return True
