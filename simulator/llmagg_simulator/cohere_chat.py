"""Deterministic Cohere v2 chat: the whole response, or the events of its stream."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from llmagg_simulator.catalog import SimModel
from llmagg_simulator.delivery import EventStream, sse
from llmagg_simulator.replies import content_pieces, count_tokens, halves, reply_text, shape_reply, sim_arguments
from llmagg_simulator.validation import BadRequest, is_int, is_str_list

ROLES = ("system", "user", "assistant", "tool")
FINISH_REASONS = {"end": "COMPLETE", "max_tokens": "MAX_TOKENS", "stop_sequence": "STOP_SEQUENCE"}


def _functions(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        tool["function"]
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and tool["function"].get("name")
    ]


def check_request(body: Any) -> dict[str, Any]:
    """The body as a dict when Cohere would accept its shape; raises InvalidRequest otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("invalid request: the body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("invalid request: model must be specified.")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise BadRequest("invalid request: messages must not be empty.")
    for index, message in enumerate(body["messages"]):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadRequest(f"invalid request: messages[{index}].role must be one of {', '.join(ROLES)}.")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise BadRequest("invalid request: stream must be a boolean.")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not is_int(max_tokens) or max_tokens < 1):
        raise BadRequest("invalid request: max_tokens must be a positive integer.")
    stops = body.get("stop_sequences")
    if stops is not None and not is_str_list(stops):
        raise BadRequest("invalid request: stop_sequences must be a list of strings.")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise BadRequest("invalid request: tools must be a list.")
    if body.get("tool_choice") not in (None, "REQUIRED", "NONE"):
        raise BadRequest("invalid request: tool_choice must be one of REQUIRED, NONE.")
    return body


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def input_tokens(body: dict[str, Any]) -> int:
    return count_tokens(" ".join(_text_of(m.get("content")) for m in body["messages"]))


def _last_user_text(body: dict[str, Any]) -> str | None:
    return next((_text_of(m.get("content")) for m in reversed(body["messages"]) if m["role"] == "user"), None)


def tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The call the simulated model makes when tools are offered and tool_choice is not NONE (without a
    tool_choice, only until a tool's result is back: then it answers)."""
    functions = _functions(body)
    if not functions or body.get("tool_choice") == "NONE":
        return None
    last = body["messages"][-1] if body["messages"] else None
    if body.get("tool_choice") is None and isinstance(last, dict) and last.get("role") == "tool":
        return None
    chosen = functions[0]
    return {
        "id": f"{chosen['name']}_{uuid.uuid4().hex[:12]}",
        "type": "function",
        "function": {"name": chosen["name"], "arguments": json.dumps(sim_arguments(chosen.get("parameters")))},
    }


def _usage(prompt: int, output: int) -> dict[str, Any]:
    return {
        "billed_units": {"input_tokens": prompt, "output_tokens": output},
        "tokens": {"input_tokens": prompt, "output_tokens": output},
    }


def _reply(provider: str, body: dict[str, Any]) -> tuple[dict[str, Any], str, int]:
    """The assistant message, the finish_reason and the output tokens (the words the model wrote)."""
    call = tool_call(body)
    if call:
        plan = f"I will use the {call['function']['name']} tool."
        message = {"role": "assistant", "tool_plan": plan, "tool_calls": [call]}
        return message, "TOOL_CALL", count_tokens(plan) + count_tokens(call["function"]["arguments"])
    text = reply_text(provider, body["model"], _last_user_text(body))
    shaped = shape_reply(text, body.get("max_tokens"), body.get("stop_sequences"))
    message = {"role": "assistant", "content": [{"type": "text", "text": shaped.text}]}
    return message, FINISH_REASONS[shaped.ended_by], count_tokens(shaped.text)


def chat(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    message, finish_reason, output = _reply(provider, body)
    return {
        "id": str(uuid.uuid4()),
        "message": message,
        "finish_reason": finish_reason,
        "usage": _usage(input_tokens(body), output),
    }


def stream_events(provider: str, body: dict[str, Any]) -> EventStream:
    """message-start, then content-start/-delta/-end (or tool-plan-delta and tool-call-start/-delta/-end), message-end.

    Each event is `event: <type>` with the JSON, whose `type` repeats it; the stream ends after message-end.
    """
    message, finish_reason, output = _reply(provider, body)
    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    events: list[dict[str, Any]] = [{"id": str(uuid.uuid4()), "type": "message-start", "delta": {"message": start}}]
    opening = 1
    if "tool_calls" in message:
        call = message["tool_calls"][0]
        events += [
            {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": p}}}
            for p in content_pieces(message["tool_plan"])
        ]
        opened = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        events.append({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": opened}}})
        events += [
            {
                "type": "tool-call-delta",
                "index": 0,
                "delta": {"message": {"tool_calls": {"function": {"arguments": p}}}},
            }
            for p in halves(call["function"]["arguments"])
        ]
        events.append({"type": "tool-call-end", "index": 0})
    else:
        text = message["content"][0]["text"]
        events.append(
            {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}
        )
        opening += 1
        events += [
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}
            for piece in content_pieces(text)
        ]
        events.append({"type": "content-end", "index": 0})
    usage = _usage(input_tokens(body), output)
    events.append({"type": "message-end", "delta": {"finish_reason": finish_reason, "usage": usage}})
    return EventStream([sse(event, event["type"]) for event in events], opening=opening, finishing=len(events) - 1)


def model_list(models: Sequence[SimModel]) -> dict[str, Any]:
    """Cohere's `GET /v1/models`: every model on one page."""
    return {
        "models": [
            {
                "name": model.id,
                "endpoints": ["embed"] if model.embeds else ["chat", "generate"],
                "finetuned": False,
                "context_length": model.input_token_limit,
                "tokenizer_url": None,
                "default_endpoints": [],
                "features": [] if model.embeds else ["tools", "json_mode"],
            }
            for model in models
        ],
        "next_page_token": None,
    }
