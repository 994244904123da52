"""Cohere's v2 chat: OpenAI chat bodies to `POST {base}/chat`, its answers and events back.

What maps to what:
- Messages map almost one to one: system and developer -> system, user (text and `image_url`
  parts), assistant (text and `tool_calls` as they are), tool (`tool_call_id`, content).
- max_(completion_)tokens -> max_tokens, stop -> stop_sequences, top_p -> p, temperature, seed,
  frequency/presence penalties; `response_format` json_object -> `{type: json_object}`,
  json_schema -> `{type: json_object, json_schema: <schema>}`.
- function tools as they are; tool_choice none/required -> NONE/REQUIRED, auto -> left out, a named
  function -> REQUIRED with only that tool offered (Cohere cannot name one).
- Not expressible (the next candidate is tried): `n` > 1, tools other than functions, other parts.
- finish_reason COMPLETE/STOP_SEQUENCE -> stop, MAX_TOKENS/ERROR_LIMIT -> length, TOOL_CALL ->
  tool_calls, ERROR_TOXIC -> content_filter; ERROR and TIMEOUT (in an answer or in a stream's
  message-end) are failures. `tool_plan` (the model's note before calling tools) is not passed on.
- usage: billed_units (else tokens) input/output -> prompt/completion/total tokens.
- Errors `{"id", "message"}` by status: 429 -> RATE_LIMITED (retry-after), 401/403 -> AUTH,
  "too many tokens" -> CONTEXT_LENGTH.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from llmagg.common.secrets import Secret
from llmagg_router.adapters.http_adapter import Exchange
from llmagg_router.adapters.http_upstream import auth_headers
from llmagg_router.adapters.openai_shapes import (
    ChunkWriter,
    completion,
    functions_of,
    image_url,
    invalid,
    json_schema_of,
    max_tokens_of,
    one_choice,
    parts_of,
    stops_of,
    text_of,
    tool_call,
    tool_choice_of,
    unsupported,
    usage,
)
from llmagg_router.adapters.upstream_errors import classify, clean
from llmagg_router.domain.upstream import Candidate, Failure, Operation, UpstreamError

PROTOCOL = "cohere"
FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "ERROR_LIMIT": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
}
_FIELDS = {
    "temperature": "temperature",
    "top_p": "p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}


# --- the request ---------------------------------------------------------------------------------


def _user_content(content: Any) -> Any:
    if isinstance(content, str):
        return content
    blocks = []
    for part in parts_of(content):
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": str(part.get("text") or "")})
        elif part.get("type") == "image_url":
            blocks.append({"type": "image_url", "image_url": {"url": image_url(part)}})
        else:
            raise unsupported(PROTOCOL, f"{part.get('type')!r} content parts")
    return blocks


def _assistant(message: dict[str, Any]) -> dict[str, Any] | None:
    turn: dict[str, Any] = {"role": "assistant"}
    if text := text_of(message.get("content")):
        turn["content"] = text
    calls = []
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments or {}).decode()
        calls.append(tool_call(str(call.get("id")), str(function.get("name")), arguments))
    if calls:
        turn["tool_calls"] = calls
    return turn if len(turn) > 1 else None


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = []
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            raise invalid("Every message must be an object.", "messages")
        role = message.get("role")
        if role in ("system", "developer"):
            messages.append({"role": "system", "content": text_of(message.get("content"))})
        elif role == "user":
            messages.append({"role": "user", "content": _user_content(message.get("content"))})
        elif role == "assistant":
            if (turn := _assistant(message)) is not None:
                messages.append(turn)
        elif role == "tool":
            result = {"role": "tool", "tool_call_id": message.get("tool_call_id")}
            messages.append({**result, "content": text_of(message.get("content"))})
        else:
            raise unsupported(PROTOCOL, f"messages with role {role!r}")
    return messages


def _tools(body: dict[str, Any], payload: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": function} for function in functions_of(body, PROTOCOL)]
    if not tools:
        return
    choice = tool_choice_of(body)
    if choice in ("none", "required"):
        payload["tool_choice"] = choice.upper()
    elif choice not in (None, "auto"):
        tools = [tool for tool in tools if tool["function"]["name"] == choice]
        if not tools:
            raise invalid(f"tool_choice names {choice!r}, which is not among the tools.", "tool_choice")
        payload["tool_choice"] = "REQUIRED"
    payload["tools"] = tools


def request_body(body: dict[str, Any]) -> dict[str, Any]:
    """The v2 chat request for an OpenAI chat body."""
    one_choice(body, PROTOCOL)
    payload: dict[str, Any] = {"model": body.get("model"), "messages": _messages(body)}
    payload.update({name: body[field] for field, name in _FIELDS.items() if body.get(field) is not None})
    if (max_tokens := max_tokens_of(body)) is not None:
        payload["max_tokens"] = max_tokens
    if stops := stops_of(body):
        payload["stop_sequences"] = stops
    json_format = json_schema_of(body)
    if json_format is not None:
        payload["response_format"] = {"type": "json_object"}
        if json_format[1] is not None:
            payload["response_format"]["json_schema"] = json_format[1]
    _tools(body, payload)
    if body.get("stream"):
        payload["stream"] = True
    return payload


# --- the answer ----------------------------------------------------------------------------------


def _usage(counts: Any) -> dict[str, Any] | None:
    if not isinstance(counts, dict):
        return None
    for kind in ("billed_units", "tokens"):
        units = counts.get(kind)
        if isinstance(units, dict) and isinstance(units.get("input_tokens"), int | float):
            output = units.get("output_tokens")
            return usage(int(units["input_tokens"]), int(output) if isinstance(output, int | float) else 0)
    return None


def _finish_reason(reason: Any, detail: Any = None) -> str:
    """OpenAI's finish_reason for Cohere's; a failure for ERROR and TIMEOUT."""
    if reason == "ERROR":
        raise UpstreamError(Failure.SERVER, f"the provider ended the answer with an error: {clean(detail, 300) or ''}")
    if reason == "TIMEOUT":
        raise UpstreamError(Failure.TIMEOUT, "the provider timed out while answering")
    return FINISH_REASONS.get(reason, "stop")


def completion_of(response: dict[str, Any], model: str) -> dict[str, Any]:
    """A `chat.completion` for a v2 chat answer (which does not name its model)."""
    message = response.get("message") if isinstance(response.get("message"), dict) else {}
    content = message.get("content")
    texts = [
        str(block.get("text") or "")
        for block in (content if isinstance(content, list) else ())
        if isinstance(block, dict) and block.get("type") == "text"
    ]
    if isinstance(content, str):
        texts = [content]
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) and isinstance(call.get("function"), dict) else {}
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
        calls.append(tool_call(str(call.get("id")), str(function.get("name")), arguments))
    return completion(
        str(response.get("id") or ""),
        model,
        "".join(texts) if texts or not calls else None,
        calls,
        _finish_reason(response.get("finish_reason"), message.get("error")),
        _usage(response.get("usage")),
    )


def _inner(event: dict[str, Any]) -> dict[str, Any]:
    """`delta.message` of a stream event."""
    delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
    message = delta.get("message")
    return message if isinstance(message, dict) else {}


class CohereEvents:
    """v2 chat stream events -> OpenAI chunks: text, tool calls by index, finish, usage."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._out = ChunkWriter(body)
        self._tool_calls: dict[Any, int] = {}  # Cohere's tool call index -> ours

    def feed(self, event: dict[str, Any]) -> Iterable[dict[str, Any]]:
        out = self._out
        kind = event.get("type")
        if kind == "content-delta":
            content = _inner(event).get("content")
            text = content.get("text") if isinstance(content, dict) else None
            return (out.text(text),) if isinstance(text, str) and text else ()
        if kind == "message-start":
            out.id = str(event.get("id") or out.id)
            return out.start()
        if kind == "content-start":
            content = _inner(event).get("content")
            text = content.get("text") if isinstance(content, dict) else None
            return [*out.start(), out.text(text)] if isinstance(text, str) and text else out.start()
        if kind == "tool-call-start":
            call = _inner(event).get("tool_calls")
            call = call if isinstance(call, dict) else {}
            function = call.get("function") if isinstance(call.get("function"), dict) else {}
            index = self._tool_calls.setdefault(event.get("index", len(self._tool_calls)), len(self._tool_calls))
            first = out.tool_call(
                index, str(call.get("id")), str(function.get("name")), function.get("arguments") or ""
            )
            return [*out.start(), first]
        if kind == "tool-call-delta":
            call = _inner(event).get("tool_calls")
            function = call.get("function") if isinstance(call, dict) else None
            piece = function.get("arguments") if isinstance(function, dict) else None
            index = self._tool_calls.get(event.get("index", len(self._tool_calls) - 1))
            return (out.arguments(index, piece),) if index is not None and isinstance(piece, str) and piece else ()
        if kind == "message-end":
            delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
            reason = _finish_reason(delta.get("finish_reason"), delta.get("error"))
            out.usage = _usage(delta.get("usage")) or out.usage
            return (out.finish(reason),)
        return ()  # content-end, tool-plan-delta, tool-call-end, citations, debug, and whatever is new

    def end(self) -> Iterable[dict[str, Any]]:
        return self._out.end(PROTOCOL)


class CohereDialect:
    def exchange(
        self, candidate: Candidate, key: Secret | None, operation: Operation, body: dict[str, Any]
    ) -> Exchange:
        if operation is not Operation.CHAT:
            raise unsupported(PROTOCOL, "embeddings")
        return Exchange(
            candidate.account.base_url + "/chat",
            auth_headers(candidate, key),
            request_body(body),
            lambda response: completion_of(response, candidate.model_id),
            lambda: CohereEvents(body),
        )

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return classify(status, headers, raw)
