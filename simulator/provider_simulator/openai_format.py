"""Deterministic OpenAI-format payloads: completions, stream chunks, embeddings, models, errors."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
import uuid
from typing import Any

MODELS = ("sim-small", "sim-large", "sim-embed")


def count_tokens(text: str) -> int:
    return max(1, len(text.split()))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    return sum(count_tokens(_text_of(m.get("content"))) for m in messages if isinstance(m, dict))


def reply_text(provider: str, body: dict[str, Any]) -> str:
    for message in reversed(body["messages"]):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _text_of(message.get("content"))
            if text.startswith("echo:"):
                return text[len("echo:") :].strip()
            break
    return f"Hello from {provider} ({body['model']})."


def tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The call the simulated model makes when tools are offered and tool_choice allows it."""
    tools = body.get("tools")
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    functions = [t.get("function", {}) for t in tools if isinstance(t, dict)]
    chosen = functions[0]
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        chosen = next((f for f in functions if f.get("name") == wanted), chosen)
    required = (chosen.get("parameters") or {}).get("required") or []
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": chosen.get("name", ""), "arguments": json.dumps({name: "sim" for name in required})},
    }


def new_id() -> str:
    return f"chatcmpl-sim-{uuid.uuid4().hex[:20]}"


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    call = tool_call(body)
    text = None if call else reply_text(provider, body)
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if call:
        message["tool_calls"] = [call]
    completion_tokens = count_tokens(text or call["function"]["arguments"])
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if call else "stop"}
        ],
        "usage": usage(prompt_tokens(body["messages"]), completion_tokens),
        "system_fingerprint": "fp_sim",
    }


def stream_chunks(provider: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every chunk of a streamed answer, in order (without the final [DONE])."""
    chunk_id, created, model = new_id(), int(time.time()), body["model"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_sim",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    call = tool_call(body)
    if call:
        arguments = call["function"]["arguments"]
        first = {**call, "index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
        chunks.append(chunk({"tool_calls": [first]}))
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        chunks.append(chunk({}, "tool_calls"))
        completion_tokens = count_tokens(arguments)
    else:
        text = reply_text(provider, body)
        words = text.split(" ")
        for i, word in enumerate(words):
            chunks.append(chunk({"content": word if i == 0 else " " + word}))
        chunks.append(chunk({}, "stop"))
        completion_tokens = count_tokens(text)
    if (body.get("stream_options") or {}).get("include_usage"):
        last = chunk({})
        last["choices"] = []
        last["usage"] = usage(prompt_tokens(body["messages"]), completion_tokens)
        chunks.append(last)
    return chunks


def embedding_vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    while len(digest) < dimensions:
        digest += hashlib.sha256(digest).digest()
    return [round(b / 255.0 * 2 - 1, 6) for b in digest[:dimensions]]


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    raw = body["input"]
    inputs = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else list(raw)
    dimensions = int(body.get("dimensions") or 8)
    data = []
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(str(t) for t in item)
        vector = embedding_vector(text, dimensions)
        if body.get("encoding_format") == "base64":
            encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        else:
            encoded = vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(count_tokens(i if isinstance(i, str) else " ".join(map(str, i))) for i in inputs)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def models(provider: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": 1700000000, "owned_by": provider} for m in MODELS],
    }


def error(message: str, error_type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
