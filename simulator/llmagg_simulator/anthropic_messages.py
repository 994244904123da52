"""Deterministic Anthropic Messages: the whole message, the events of its stream, the model catalog."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from llmagg_simulator.anthropic_errors import rfc3339
from llmagg_simulator.catalog import BY_ID, CREATED, MODELS, SimModel, page
from llmagg_simulator.delivery import EventStream, sse
from llmagg_simulator.replies import content_pieces, count_tokens, halves, reply_text, shape_reply, sim_arguments
from llmagg_simulator.validation import BadRequest, is_int, is_str_list

STOP_REASONS = {"end": "end_turn", "max_tokens": "max_tokens", "stop_sequence": "stop_sequence"}
DEFAULT_PAGE_SIZE = 20


def _client_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        tool
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("name"), str) and isinstance(tool.get("input_schema"), dict)
    ]


def check_request(body: Any) -> dict[str, Any]:
    """The body as a dict when Anthropic would accept its shape; raises InvalidRequest otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("The request body is not valid JSON.")
    for field in ("model", "max_tokens", "messages"):
        if body.get(field) is None:
            raise BadRequest(f"{field}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise BadRequest("model: Input should be a valid string")
    if not is_int(body["max_tokens"]):
        raise BadRequest("max_tokens: Input should be a valid integer")
    if body["max_tokens"] < 1:
        raise BadRequest("max_tokens: Input should be greater than or equal to 1")
    if not isinstance(body["messages"], list):
        raise BadRequest("messages: Input should be a valid list")
    if not body["messages"]:
        raise BadRequest("messages: at least one message is required")
    for index, message in enumerate(body["messages"]):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            raise BadRequest(
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                'not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            raise BadRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
    if body.get("system") is not None and not isinstance(body["system"], str | list):
        raise BadRequest("system: Input should be a valid string or a list of text blocks")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise BadRequest("stream: Input should be a valid boolean")
    stops = body.get("stop_sequences")
    if stops is not None and not is_str_list(stops):
        raise BadRequest("stop_sequences: Input should be a valid list of strings")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise BadRequest("tools: Input should be a valid list")
    choice = body.get("tool_choice")
    if choice is not None and (
        not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")
    ):
        raise BadRequest("tool_choice: Input should be an object with type 'auto', 'any', 'tool' or 'none'")
    if choice and choice["type"] == "tool" and choice.get("name") not in {t["name"] for t in _client_tools(body)}:
        raise BadRequest(f"tool_choice: Tool '{choice.get('name')}' not found in provided tools")
    return body


def _text_of(content: Any) -> str:
    """The text in a string or in content blocks (text blocks, and the content of tool results)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for block in content:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif isinstance(block, dict) and block.get("type") == "tool_result":
                texts.append(_text_of(block.get("content")))
        return " ".join(texts)
    return ""


def input_tokens(body: dict[str, Any]) -> int:
    texts = [_text_of(body.get("system")), *(_text_of(m.get("content")) for m in body["messages"])]
    return count_tokens(" ".join(texts))


def _last_user_text(body: dict[str, Any]) -> str | None:
    return next((_text_of(m.get("content")) for m in reversed(body["messages"]) if m["role"] == "user"), None)


def _ends_with_tool_result(body: dict[str, Any]) -> bool:
    last = body["messages"][-1] if body["messages"] else {}
    content = last.get("content") if last.get("role") == "user" else None
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def tool_use(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool the simulated model calls when tools are offered and tool_choice is not "none" (with "auto",
    only until a tool's result is back: then it answers)."""
    tools = _client_tools(body)
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice["type"] == "none" or (choice["type"] == "auto" and _ends_with_tool_result(body)):
        return None
    chosen = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
    return {
        "type": "tool_use",
        "id": f"toolu_sim_{uuid.uuid4().hex[:24]}",
        "name": chosen["name"],
        "input": sim_arguments(chosen["input_schema"]),
    }


def _usage(prompt: int, output: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "service_tier": "standard",
    }


def _answer(provider: str, body: dict[str, Any]) -> tuple[dict[str, Any], str, str | None, int]:
    """The content block, stop_reason, stop_sequence and output tokens of the reply."""
    call = tool_use(body)
    if call:
        return call, "tool_use", None, count_tokens(json.dumps(call["input"]))
    text = reply_text(provider, body["model"], _last_user_text(body))
    shaped = shape_reply(text, body["max_tokens"], body.get("stop_sequences"))
    block = {"type": "text", "text": shaped.text}
    return block, STOP_REASONS[shaped.ended_by], shaped.stop_sequence, count_tokens(shaped.text)


def _message_shell(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"msg_sim_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }


def message(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    block, stop_reason, stop_sequence, output = _answer(provider, body)
    return {
        **_message_shell(body),
        "content": [block],
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": _usage(input_tokens(body), output),
    }


def stream_events(provider: str, body: dict[str, Any]) -> EventStream:
    """message_start, content_block_start, ping, the deltas, content_block_stop, message_delta, message_stop."""
    block, stop_reason, stop_sequence, output = _answer(provider, body)
    if block["type"] == "tool_use":
        opening_block = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in halves(json.dumps(block["input"]))]
    else:
        opening_block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in content_pieces(block["text"])]
    events = [
        (
            "message_start",
            {"type": "message_start", "message": {**_message_shell(body), "usage": _usage(input_tokens(body), 1)}},
        ),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": opening_block}),
        ("ping", {"type": "ping"}),
        *(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {"output_tokens": output},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return EventStream([sse(data, name) for name, data in events], opening=3, finishing=len(events) - 2)


def model_info(model_id: str, models: Sequence[SimModel] = MODELS) -> dict[str, Any]:
    model = next((m for m in models if m.id == model_id), None) or BY_ID[model_id]
    return {
        "type": "model",
        "id": model.id,
        "display_name": model.display_name,
        "created_at": rfc3339(datetime.fromtimestamp(CREATED, UTC)),
        "lifecycle": "active",
        "max_input_tokens": model.input_token_limit,
        "max_tokens": model.output_token_limit,
    }


def model_page(query: dict[str, str], models: Sequence[SimModel] = MODELS) -> dict[str, Any]:
    """GET /v1/models?limit=&after_id=&before_id=: a page of the catalog, as the SDK's auto-pager reads it."""
    ids = [model.id for model in models]
    try:
        limit = int(query.get("limit", DEFAULT_PAGE_SIZE))
    except ValueError:
        raise BadRequest("limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise BadRequest("limit: Input should be between 1 and 1000")
    if query.get("before_id") in ids:
        end = ids.index(query["before_id"])
        start = max(0, end - limit)
        selected, has_more = ids[start:end], start > 0
    else:
        start = ids.index(query["after_id"]) + 1 if query.get("after_id") in ids else 0
        selected, next_start = page(ids, start, limit)
        has_more = next_start is not None
    return {
        "data": [model_info(model_id, models) for model_id in selected],
        "has_more": has_more,
        "first_id": selected[0] if selected else None,
        "last_id": selected[-1] if selected else None,
    }
