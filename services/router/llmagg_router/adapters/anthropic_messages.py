"""The Anthropic Messages protocol: OpenAI chat bodies to `POST {base}/messages`, its answers and events back.

What maps to what:
- system and developer messages -> the top-level `system` (text blocks, in order); user content
  parts: text, images (data: URLs -> base64 sources, http(s) URLs -> url sources), PDF files
  (`file.file_data` data: URLs -> document blocks); assistant `tool_calls` -> `tool_use` blocks;
  `tool` messages -> `tool_result` blocks of a user message (consecutive ones merged into one).
- `max_completion_tokens`/`max_tokens` -> `max_tokens` (required there; 4096, or the model's
  shorter `max_output_tokens` from the registry, when the request sets none), `stop` -> `stop_sequences`, `temperature`, `top_p`, `user` -> `metadata.user_id`;
  function tools -> `{name, description, input_schema}`; `tool_choice` auto/none/required/named ->
  auto/none/any/tool; `parallel_tool_calls: false` -> `disable_parallel_tool_use`.
- `response_format` json_object / json_schema: Anthropic has no JSON mode, so the answer is asked
  for as the input of one forced tool (`json_answer`, its input_schema the requested schema, or any
  object) - the way Anthropic documents for JSON output - and that input comes back as the message
  content, with finish_reason `stop`. A schema whose top level is not an object cannot be a tool's
  input: such a request falls over to a candidate that can take it.
- Not expressible (the next candidate is tried): `n` > 1, tools other than functions, audio and
  other content parts. Without an Anthropic equivalent and ignored: penalties, `logit_bias`, `seed`,
  `logprobs`.
- stop_reason end_turn/stop_sequence/pause_turn -> stop, max_tokens -> length, tool_use ->
  tool_calls, refusal -> content_filter; usage input (cache reads and writes included) and output
  tokens -> prompt/completion/total tokens.
- Errors: 429 `rate_limit_error` -> RATE_LIMITED (retry-after, else the reset time of the exhausted
  `anthropic-ratelimit-*` dimension); 529 `overloaded_error`, in an answer or as a stream's `error`
  event -> SERVER (see `classify_error`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from llmagg.common.secrets import Secret
from llmagg.registry.auth import ANTHROPIC_VERSION
from llmagg_router.adapters.http_adapter import Exchange
from llmagg_router.adapters.http_upstream import auth_headers
from llmagg_router.adapters.openai_shapes import (
    ChunkWriter,
    arguments_of,
    completion,
    data_url,
    functions_of,
    image_url,
    json_schema_of,
    max_tokens_of,
    one_choice,
    parts_of,
    stops_of,
    text_of,
    token_count,
    tool_call,
    tool_choice_of,
    turns,
    unsupported,
    usage,
)
from llmagg_router.adapters.retry_after import seconds_until
from llmagg_router.adapters.upstream_errors import classify_error, clean, read_error
from llmagg_router.domain.upstream import Candidate, Failure, Operation, UpstreamError

PROTOCOL = "anthropic"
DEFAULT_MAX_TOKENS = 4096  # every current Claude model can write at least this much
JSON_TOOL = "json_answer"
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_RATE_LIMIT_DIMENSIONS = ("requests", "tokens", "input-tokens", "output-tokens")


# --- the request ---------------------------------------------------------------------------------


def _user_block(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "image_url":
        url = image_url(part)
        inline = data_url(url)
        if inline is None:
            return {"type": "image", "source": {"type": "url", "url": url}}
        return {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
    if kind == "file":
        file = part.get("file") if isinstance(part.get("file"), dict) else {}
        inline = data_url(file["file_data"]) if isinstance(file.get("file_data"), str) else None
        if inline is not None:
            return {"type": "document", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
        raise unsupported(PROTOCOL, "files given by id")
    raise unsupported(PROTOCOL, f"{kind!r} content parts")


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = text_of(message.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        name = (call.get("function") or {}).get("name")
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": name, "input": arguments_of(call)})
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    result = content if isinstance(content, str) else [_user_block(part) for part in parts_of(content)]
    return {"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": result}


def _turn(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    role = message.get("role")
    if role == "user":
        return "user", [_user_block(part) for part in parts_of(message.get("content"))]
    if role == "assistant":
        return "assistant", _assistant_blocks(message)
    if role == "tool":
        return "user", [_tool_result(message)]
    raise unsupported(PROTOCOL, f"messages with role {role!r}")


def _json_tool_name(tools: list[dict[str, Any]]) -> str:
    names = {tool["name"] for tool in tools}
    name = JSON_TOOL
    while name in names:
        name += "_"
    return name


def _tools(body: dict[str, Any], payload: dict[str, Any]) -> str | None:
    """Tools and tool_choice into `payload`; the name of the tool that carries a JSON answer, if any."""
    tools = [
        {
            **({"description": function["description"]} if function.get("description") else {}),
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        for function in functions_of(body, PROTOCOL)
    ]
    choice = tool_choice_of(body) if tools else None
    json_tool = None
    json_format = json_schema_of(body)
    if json_format is not None:
        schema = json_format[1] or {"type": "object"}
        if schema.get("type") != "object":
            raise unsupported(PROTOCOL, "a JSON schema whose top level is not an object")
        json_tool = _json_tool_name(tools)
        if not tools or choice == "none":
            choice = json_tool
        elif choice in (None, "auto", "required"):
            choice = "required"  # call one of the user's tools, or answer through the JSON tool
        tools.append(
            {"name": json_tool, "description": "Give your final answer as this tool's input.", "input_schema": schema}
        )
    if not tools:
        return None
    payload["tools"] = tools
    if choice is not None:
        kind = {"auto": "auto", "none": "none", "required": "any"}.get(choice)
        payload["tool_choice"] = {"type": kind} if kind else {"type": "tool", "name": choice}
    if body.get("parallel_tool_calls") is False and payload.get("tool_choice", {}).get("type") != "none":
        payload["tool_choice"] = {"type": "auto", **payload.get("tool_choice", {}), "disable_parallel_tool_use": True}
    return json_tool


def request_body(body: dict[str, Any], max_output_tokens: int | None = None) -> tuple[dict[str, Any], str | None]:
    """The Messages request for an OpenAI chat body, and the name of the JSON-answer tool when there is one.

    `max_tokens` is required there: without one in the request, 4096 (or the model's longest answer,
    when the registry knows it is shorter). Not the model's longest answer whatever it is: Anthropic
    counts max_tokens against the account's output-tokens-per-minute limit before the answer starts.
    """
    one_choice(body, PROTOCOL)
    system, messages = turns(body, _turn)
    default_max_tokens = min(DEFAULT_MAX_TOKENS, max_output_tokens or DEFAULT_MAX_TOKENS)
    payload: dict[str, Any] = {
        "model": body.get("model"),
        "max_tokens": max_tokens_of(body) or default_max_tokens,
        "messages": [{"role": role, "content": blocks} for role, blocks in messages],
    }
    if system:
        payload["system"] = [{"type": "text", "text": text} for text in system]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            payload[name] = body[name]
    if stops := stops_of(body):
        payload["stop_sequences"] = stops
    if isinstance(body.get("user"), str) and body["user"]:
        payload["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        payload["stream"] = True
    json_tool = _tools(body, payload)
    return payload, json_tool


# --- the answer ----------------------------------------------------------------------------------


def _usage(counts: Mapping[str, Any]) -> dict[str, Any]:
    cached = token_count(counts, "cache_read_input_tokens")
    prompt = token_count(counts, "input_tokens") + token_count(counts, "cache_creation_input_tokens") + cached
    return usage(prompt, token_count(counts, "output_tokens"), cached=cached)


def _finish_reason(stop_reason: Any, user_tool_calls: int) -> str:
    if stop_reason == "tool_use" and not user_tool_calls:
        return "stop"  # only the JSON-answer tool was called: the answer is the content
    return STOP_REASONS.get(stop_reason, "stop")


def completion_of(message: dict[str, Any], json_tool: str | None) -> dict[str, Any]:
    """A `chat.completion` for a Messages answer."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            if block.get("name") == json_tool:
                texts.append(arguments)
            else:
                calls.append(tool_call(str(block.get("id")), str(block.get("name")), arguments))
    counts = message.get("usage")
    return completion(
        str(message.get("id") or ""),
        str(message.get("model") or ""),
        "".join(texts) if texts or not calls else None,
        calls,
        _finish_reason(message.get("stop_reason"), len(calls)),
        _usage(counts) if isinstance(counts, dict) else None,
    )


def _stream_error(event: dict[str, Any]) -> UpstreamError:
    error = event.get("error") if isinstance(event.get("error"), dict) else {}
    kind = error.get("type")
    message = clean(error.get("message"), 300) or ""
    failure = Failure.RATE_LIMITED if kind == "rate_limit_error" else Failure.SERVER
    return UpstreamError(failure, f"error event in stream: {kind}: {message}")


_TEXT, _JSON = "text", "json"


class AnthropicEvents:
    """Messages stream events -> OpenAI chunks: text deltas, tool calls by index, finish, usage."""

    def __init__(self, body: dict[str, Any], json_tool: str | None) -> None:
        self._out = ChunkWriter(body)
        self._json_tool = json_tool
        self._blocks: dict[Any, Any] = {}  # content block index -> _TEXT, _JSON, a tool call index, or None
        self._tool_calls = 0
        self._counts: dict[str, Any] = {}

    def _count(self, counts: Any) -> None:
        if isinstance(counts, dict):
            self._counts.update({k: v for k, v in counts.items() if v is not None})
            self._out.usage = _usage(self._counts)

    def feed(self, event: dict[str, Any]) -> Iterable[dict[str, Any]]:
        out = self._out
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
            target = self._blocks.get(event.get("index"))
            if delta.get("type") == "text_delta" and delta.get("text"):
                return (out.text(delta["text"]),)
            if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                if target == _JSON:
                    return (out.text(delta["partial_json"]),)
                if isinstance(target, int):
                    return (out.arguments(target, delta["partial_json"]),)
            return ()
        if kind == "message_start":
            message = event.get("message") if isinstance(event.get("message"), dict) else {}
            out.id = str(message.get("id") or out.id)
            out.model = str(message.get("model") or out.model)
            self._count(message.get("usage"))
            return out.start()
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "message_delta":
            self._count(event.get("usage"))
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            return (out.finish(_finish_reason(stop_reason, self._tool_calls)),) if stop_reason else ()
        if kind == "error":
            raise _stream_error(event)
        return ()  # ping, content_block_stop, message_stop, and whatever is new

    def _block_start(self, event: dict[str, Any]) -> Iterable[dict[str, Any]]:
        out = self._out
        block = event.get("content_block") if isinstance(event.get("content_block"), dict) else {}
        index, kind = event.get("index"), block.get("type")
        chunks = list(out.start())
        if kind == "text":
            self._blocks[index] = _TEXT
            if block.get("text"):
                chunks.append(out.text(block["text"]))
        elif kind == "tool_use" and block.get("name") == self._json_tool:
            self._blocks[index] = _JSON
        elif kind == "tool_use":
            self._blocks[index] = self._tool_calls
            chunks.append(out.tool_call(self._tool_calls, str(block.get("id")), str(block.get("name"))))
            self._tool_calls += 1
        else:
            self._blocks[index] = None  # thinking and server-side tool blocks are not passed on
        return chunks

    def end(self) -> Iterable[dict[str, Any]]:
        return self._out.end(PROTOCOL)


# --- errors --------------------------------------------------------------------------------------


def _reset_hint(headers: Mapping[str, str]) -> float | None:
    """Seconds until the exhausted anthropic-ratelimit-* dimensions reset (the latest of them)."""
    now = time.time()
    waits = [
        seconds_until(headers[f"anthropic-ratelimit-{dimension}-reset"], now)
        for dimension in _RATE_LIMIT_DIMENSIONS
        if headers.get(f"anthropic-ratelimit-{dimension}-remaining") == "0"
        and f"anthropic-ratelimit-{dimension}-reset" in headers
    ]
    known = [wait for wait in waits if wait is not None]
    return max(known) if known else None


def classify(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    hint = _reset_hint(headers) if status == 429 and "retry-after" not in headers else None
    return classify_error(status, headers, read_error(raw), hint)


class AnthropicDialect:
    def exchange(
        self, candidate: Candidate, key: Secret | None, operation: Operation, body: dict[str, Any]
    ) -> Exchange:
        if operation is not Operation.CHAT:
            raise unsupported(PROTOCOL, "embeddings")
        payload, json_tool = request_body(body, candidate.model.max_output_tokens if candidate.model else None)
        headers = {**auth_headers(candidate, key), "anthropic-version": ANTHROPIC_VERSION}
        return Exchange(
            candidate.account.base_url + "/messages",
            headers,
            payload,
            lambda message: completion_of(message, json_tool),
            lambda: AnthropicEvents(body, json_tool),
        )

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return classify(status, headers, raw)
