"""Deterministic chat completions in the OpenAI format: the whole answer, or the chunks of a stream."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from llmagg_simulator.faults import ScriptedAnswer
from llmagg_simulator.openai_errors import InvalidRequest
from llmagg_simulator.replies import content_pieces, count_tokens, halves, reply_text, sim_arguments

SYSTEM_FINGERPRINT = "fp_sim"


def check_request(body: Any) -> dict[str, Any]:
    """The body as a dict when OpenAI would accept its shape; raises InvalidRequest otherwise."""
    if not isinstance(body, dict):
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
        )
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("you must provide a model parameter", "model")
    if not isinstance(body.get("messages"), list):
        raise InvalidRequest("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not body["messages"]:
        raise InvalidRequest("Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages")
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise InvalidRequest("Invalid type for 'stream': expected a boolean.", "stream", "invalid_type")
    if body.get("stream_options") is not None and not isinstance(body["stream_options"], dict):
        raise InvalidRequest("Invalid type for 'stream_options': expected an object.", "stream_options", "invalid_type")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise InvalidRequest("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        if wanted not in {f["name"] for f in _offered_functions(body.get("tools") or [])}:
            raise InvalidRequest(f"Tool choice '{wanted}' not found in 'tools' parameter.", "tool_choice")
    return body


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, {"type": "image_url", ...}]
        return " ".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    return count_tokens(" ".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict)))


def last_user_text(messages: list[Any]) -> str | None:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return None


def _offered_functions(tools: list[Any]) -> list[dict[str, Any]]:
    return [
        tool["function"]
        for tool in tools
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and tool["function"].get("name")
    ]


def _ends_with_tool_result(messages: list[Any]) -> bool:
    return bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The call the simulated model makes when functions are offered and tool_choice is not "none" (with
    tool_choice "auto", only until a tool's result is back: then it answers)."""
    functions = _offered_functions(body.get("tools") or [])
    choice = body.get("tool_choice", "auto")
    if not functions or choice == "none" or (choice in ("auto", None) and _ends_with_tool_result(body["messages"])):
        return None
    chosen = functions[0]
    if isinstance(choice, dict):  # check_request made sure the named function is offered
        wanted = (choice.get("function") or {}).get("name")
        chosen = next((f for f in functions if f["name"] == wanted), chosen)
    return _call(new_call_id(), chosen["name"], json.dumps(sim_arguments(chosen.get("parameters"))))


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


@dataclass(frozen=True)
class Reply:
    """What the model answers: text, tool calls (OpenAI-shaped), or both."""

    text: str | None
    tool_calls: list[dict[str, Any]]

    @property
    def tokens(self) -> int:
        return count_tokens(" ".join([self.text or "", *(c["function"]["arguments"] for c in self.tool_calls)]))


def simulated_reply(provider: str, body: dict[str, Any]) -> Reply:
    """The simulated model's own reply: a call when tools are offered, else the greeting or the echo."""
    call = tool_call(body)
    if call:
        return Reply(None, [call])
    return Reply(reply_text(provider, body["model"], last_user_text(body["messages"])), [])


def scripted_reply(answer: ScriptedAnswer) -> Reply:
    """The reply an `answer` fault scripts, each tool call with the id it was given or a new one."""
    calls = [_call(call.id or new_call_id(), call.name, call.arguments) for call in answer.tool_calls]
    return Reply(answer.content, calls)


def new_completion_id() -> str:
    return f"chatcmpl-sim-{uuid.uuid4().hex[:24]}"


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def token_logprob(body: dict[str, Any], token: str, position: int) -> dict[str, Any]:
    """A token's logprob entry as OpenAI writes it: a made-up but fixed logprob, its UTF-8 bytes, and as many
    alternatives as `top_logprobs` asks (the token itself first)."""
    logprob = -0.25 * (position % 4 + 1)
    alternatives = [token, *(f"{token}~{n}" for n in range(1, 20))][: int(body.get("top_logprobs") or 0)]
    top = [{"token": t, "logprob": logprob * (n + 1), "bytes": list(t.encode())} for n, t in enumerate(alternatives)]
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": top}


def _logprobs(body: dict[str, Any], pieces: list[str], first: int = 0) -> dict[str, Any] | None:
    """A choice's `logprobs` when the request asks for them (a token per piece of the text), else None."""
    if body.get("logprobs") is not True:
        return None
    return {"content": [token_logprob(body, piece, first + n) for n, piece in enumerate(pieces)], "refusal": None}


def completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    finish_reason = "tool_calls" if reply.tool_calls else "stop"
    logprobs = _logprobs(body, [] if reply.text is None else content_pieces(reply.text))
    return {
        "id": new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish_reason}],
        "usage": usage(prompt_tokens(body["messages"]), reply.tokens),
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def stream_chunks(body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    """Every chunk of a streamed answer in order, without the closing [DONE].

    The role chunk comes first, then content chunks (one per word, when there is text), then for each tool call an opening chunk
    (its index, id and name) and its arguments in two halves, then the chunk carrying finish_reason, then,
    when stream_options.include_usage is set, a chunk with `choices: []` and the usage.
    """
    chunk_id, created, model = new_completion_id(), int(time.time()), body["model"]

    def chunk(
        delta: dict[str, Any], finish_reason: str | None = None, logprobs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}],
        }

    chunks = [chunk({"role": "assistant", "content": ""}, logprobs=_logprobs(body, []))]
    if reply.text is not None:
        pieces = content_pieces(reply.text)
        chunks.extend(chunk({"content": p}, logprobs=_logprobs(body, [p], n)) for n, p in enumerate(pieces))
    for index, call in enumerate(reply.tool_calls):
        name, arguments = call["function"]["name"], call["function"]["arguments"]
        opening = {"index": index, "id": call["id"], "type": "function", "function": {"name": name, "arguments": ""}}
        chunks.append(chunk({"tool_calls": [opening]}))
        for piece in halves(arguments):
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    chunks.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage_chunk = chunk({})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = usage(prompt_tokens(body["messages"]), reply.tokens)
        chunks.append(usage_chunk)
    return chunks
