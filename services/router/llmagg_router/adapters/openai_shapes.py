"""OpenAI's chat shapes as the native dialects read and write them: message content, tool calls,
response formats, and the completion, chunks and usage they answer with."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from llmagg_router.domain.upstream import Failure, UpstreamError

_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*);base64,(.*)$", re.DOTALL)


def unsupported(protocol: str, what: str) -> UpstreamError:
    """A request the protocol cannot express: the next candidate may, and this one learns nothing."""
    return UpstreamError(Failure.UNSUPPORTED, f"the {protocol} protocol cannot express {what}")


def invalid(message: str, param: str | None = None) -> UpstreamError:
    """A request no provider can serve as it is: back to the client as a 400."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": "invalid_request"}
    return UpstreamError(Failure.CLIENT, message, status=400, error=error)


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text (and refusal) parts of a parts array."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text") or part.get("refusal") or ""
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "refusal")
        )
    return ""


def parts_of(content: Any) -> list[dict[str, Any]]:
    """A message's content as a parts array ([] for none)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [part for part in content if isinstance(part, dict)]
    return []


def turns(
    body: dict[str, Any], convert: Callable[[dict[str, Any]], tuple[str, list[Any]]]
) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    """The request's system and developer texts, in order, and its other messages as the (role, parts)
    `convert` makes of each, consecutive turns of one role merged into one (as Anthropic and Gemini
    read them: a tool's result and the user's next words are one user turn there)."""
    system: list[str] = []
    merged: list[tuple[str, list[Any]]] = []
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            raise invalid("Every message must be an object.", "messages")
        if message.get("role") in ("system", "developer"):
            if text := text_of(message.get("content")):
                system.append(text)
            continue
        role, parts = convert(message)
        if not parts:
            continue
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(parts)
        else:
            merged.append((role, parts))
    return system, merged


def image_url(part: dict[str, Any]) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise invalid("An image_url content part needs image_url.url.", "messages")
    return url


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL; None for any other URL."""
    if not url.startswith("data:"):
        return None
    match = _DATA_URL.match(url)
    if match is None:
        raise invalid("An image data URL must be `data:<media type>;base64,<data>`.", "messages")
    return match.group(1) or "application/octet-stream", match.group(3)


def arguments_of(call: dict[str, Any]) -> dict[str, Any]:
    """The parsed arguments of an assistant's tool call (an object; "" stands for none)."""
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise invalid(f"The arguments of tool call {call.get('id')!r} are not valid JSON.", "messages") from None
    if not isinstance(arguments, dict):
        raise invalid(f"The arguments of tool call {call.get('id')!r} must be a JSON object.", "messages")
    return arguments


def functions_of(body: dict[str, Any], protocol: str) -> list[dict[str, Any]]:
    """The `function` objects of the request's tools; other tool types cannot be expressed."""
    functions = []
    for tool in body.get("tools") or ():
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else tool
            raise unsupported(protocol, f"tools of type {kind!r}")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise invalid("Every tool needs function.name.", "tools")
        functions.append(function)
    return functions


def tool_choice_of(body: dict[str, Any]) -> str | None:
    """The tool choice as one word ("auto", "none", "required") or the name of the one function forced."""
    choice = body.get("tool_choice")
    if choice is None or isinstance(choice, str):
        return choice
    if isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return function["name"]
    raise invalid("tool_choice must be none, auto, required or {type: function, function: {name}}.", "tool_choice")


def json_schema_of(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
    """("json_object", None) or ("json_schema", schema) for a JSON response format; None for text."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict) or response_format.get("type") in (None, "text"):
        return None
    kind = response_format["type"]
    if kind == "json_object":
        return kind, None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return kind, schema if isinstance(schema, dict) else {"type": "object"}
    raise invalid(f"Unknown response_format type {kind!r}.", "response_format")


def max_tokens_of(body: dict[str, Any]) -> int | None:
    """The answer cap the client asked for, as an integer (`70.0` is 70: the router's checks accept it)."""
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stops_of(body: dict[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and stop:
        return [s for s in stop if isinstance(s, str)]
    return None


def one_choice(body: dict[str, Any], protocol: str) -> None:
    n = body.get("n")
    if n not in (None, 1):
        raise unsupported(protocol, f"n={n} (several choices)")


def token_count(counts: Mapping[str, Any], name: str) -> int:
    """A provider's token count by name; 0 when it sent none."""
    value = counts.get(name)
    return value if isinstance(value, int) else 0


def usage(prompt: int, completion: int, *, cached: int | None = None, reasoning: int | None = None) -> dict[str, Any]:
    counted: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        counted["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning:
        counted["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return counted


def tool_call(call_id: str, name: str, arguments: str, index: int | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    if index is not None:
        call = {"index": index, **call}
    return call


def completion(
    response_id: str,
    model: str,
    content: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    counted: dict[str, Any] | None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    answer: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if counted is not None:
        answer["usage"] = counted
    return answer


class ChunkWriter:
    """The chunks of one OpenAI stream: the role chunk, deltas, the finishing chunk and the usage chunk.

    The usage chunk comes only when the request asked for it (`stream_options.include_usage`), as
    OpenAI sends it: a client reading `choices[0]` of every chunk would break on it otherwise.
    """

    def __init__(self, body: dict[str, Any]) -> None:
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and options.get("include_usage") is True
        self.id = ""
        self.model = str(body.get("model") or "")
        self.created = int(time.time())
        self.usage: dict[str, Any] | None = None
        self.finished = False
        self._started = False

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def start(self) -> Iterable[dict[str, Any]]:
        """The role chunk, once."""
        if self._started:
            return ()
        self._started = True
        return (self.chunk({"role": "assistant", "content": ""}),)

    def text(self, text: str) -> dict[str, Any]:
        return self.chunk({"content": text})

    def tool_call(self, index: int, call_id: str, name: str, arguments: str = "") -> dict[str, Any]:
        return self.chunk({"tool_calls": [tool_call(call_id, name, arguments, index)]})

    def arguments(self, index: int, piece: str) -> dict[str, Any]:
        return self.chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})

    def finish(self, finish_reason: str) -> dict[str, Any]:
        self.finished = True
        return self.chunk({}, finish_reason)

    def end(self, protocol: str) -> Iterable[dict[str, Any]]:
        """The usage chunk when asked for; BAD_RESPONSE when the stream never finished its answer."""
        if not self.finished:
            raise UpstreamError(Failure.BAD_RESPONSE, f"the {protocol} stream ended before the response was complete")
        if self.include_usage and self.usage is not None:
            return ({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                     "model": self.model, "choices": [], "usage": self.usage},)  # fmt: skip
        return ()
