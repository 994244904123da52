"""Deterministic Gemini generateContent: the whole response, the chunks of its stream, the model catalog.

Field names are read in both JSON spellings the API accepts (`systemInstruction` and `system_instruction`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from llmagg_simulator.catalog import BY_ID, MODELS, SimModel, page
from llmagg_simulator.delivery import EventStream, sse
from llmagg_simulator.gemini_errors import SSE_END
from llmagg_simulator.replies import content_pieces, count_tokens, reply_text, shape_reply, sim_arguments
from llmagg_simulator.validation import BadRequest, is_int, is_str_list

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def _get(obj: Any, name: str) -> Any:
    """`obj[name]` under its camelCase name or its snake_case one."""
    if not isinstance(obj, dict):
        return None
    if name in obj:
        return obj[name]
    return obj.get(re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower())


def _functions(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        declaration
        for tool in _get(body, "tools") or []
        for declaration in _get(tool, "functionDeclarations") or []
        if isinstance(declaration, dict) and isinstance(declaration.get("name"), str)
    ]


def _calling_config(body: dict[str, Any]) -> dict[str, Any]:
    config = _get(_get(body, "toolConfig"), "functionCallingConfig")
    return config if isinstance(config, dict) else {}


def check_request(body: Any) -> dict[str, Any]:
    """The body as a dict when the Gemini API would accept its shape; raises InvalidArgument otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid JSON payload received. Expected an object.")
    contents = _get(body, "contents")
    if not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified\n")
    if not isinstance(contents, list) or not all(isinstance(c, dict) for c in contents):
        raise BadRequest("Invalid value at 'contents': expected a list of Content objects.")
    for content in contents:
        if content.get("role") not in (None, "", "user", "model"):
            raise BadRequest("Please use a valid role: user, model.")
        if not isinstance(content.get("parts"), list) or not content["parts"]:
            raise BadRequest("* GenerateContentRequest.contents.parts: contents.parts must not be empty.\n")
    config = _get(body, "generationConfig")
    if config is not None and not isinstance(config, dict):
        raise BadRequest("Invalid value at 'generation_config': expected an object.")
    max_tokens = _get(config, "maxOutputTokens")
    if max_tokens is not None and (not is_int(max_tokens) or max_tokens < 1):
        raise BadRequest("* GenerateContentRequest.generation_config.max_output_tokens: must be positive.\n")
    stops = _get(config, "stopSequences")
    if stops is not None and not is_str_list(stops):
        raise BadRequest("Invalid value at 'generation_config.stop_sequences': expected a list of strings.")
    if _get(body, "tools") is not None and not isinstance(_get(body, "tools"), list):
        raise BadRequest("Invalid value at 'tools': expected a list of Tool objects.")
    offered = {f["name"] for f in _functions(body)}
    for name in _get(_calling_config(body), "allowedFunctionNames") or []:
        if name not in offered:
            raise BadRequest(f"* GenerateContentRequest.tool_config.function_calling_config: {name} not found.\n")
    return body


def _text_of(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    return " ".join(p["text"] for p in parts or [] if isinstance(p, dict) and isinstance(p.get("text"), str))


def prompt_tokens(body: dict[str, Any]) -> int:
    texts = [_text_of(_get(body, "systemInstruction")), *(_text_of(c) for c in _get(body, "contents"))]
    return count_tokens(" ".join(texts))


def _last_user_text(body: dict[str, Any]) -> str | None:
    users = [c for c in _get(body, "contents") if c.get("role") in (None, "", "user")]
    return _text_of(users[-1]) if users else None


def _ends_with_function_response(body: dict[str, Any]) -> bool:
    contents = _get(body, "contents") or []
    parts = _get(contents[-1], "parts") if contents else None
    return any(_get(part, "functionResponse") for part in parts or [])


def function_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function the simulated model calls when functions are offered and the calling mode is not NONE (in
    AUTO mode, only until a function's response is back: then it answers)."""
    functions = _functions(body)
    config = _calling_config(body)
    if not functions or config.get("mode") == "NONE":
        return None
    if config.get("mode") in (None, "AUTO", "MODE_UNSPECIFIED") and _ends_with_function_response(body):
        return None
    allowed = _get(config, "allowedFunctionNames") or []
    chosen = next((f for f in functions if f["name"] in allowed), functions[0])
    schema = _get(chosen, "parameters") or _get(chosen, "parametersJsonSchema")
    return {"name": chosen["name"], "args": sim_arguments(schema)}


def _usage(prompt: int, candidates: int) -> dict[str, Any]:
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }


def _reply(provider: str, model: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, int]:
    """The parts of the answer, its finishReason and its token count."""
    call = function_call(body)
    if call:
        return [{"functionCall": call}], "STOP", count_tokens(json.dumps(call["args"]))
    config = _get(body, "generationConfig")
    text = reply_text(provider, model, _last_user_text(body))
    shaped = shape_reply(text, _get(config, "maxOutputTokens"), _get(config, "stopSequences"))
    return (
        [{"text": shaped.text}],
        "MAX_TOKENS" if shaped.ended_by == "max_tokens" else "STOP",
        count_tokens(shaped.text),
    )


def _response(model: str, response_id: str, parts: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id,
    }


def _new_response_id() -> str:
    return uuid.uuid4().hex[:22]


def generate(provider: str, model: str, body: dict[str, Any]) -> dict[str, Any]:
    parts, finish_reason, tokens = _reply(provider, model, body)
    response = _response(model, _new_response_id(), parts, _usage(prompt_tokens(body), tokens))
    response["candidates"][0]["finishReason"] = finish_reason
    return response


def stream_chunks(provider: str, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """One chunk per word (a function call comes whole); the last carries finishReason; usage counts up to it."""
    parts, finish_reason, tokens = _reply(provider, model, body)
    response_id, prompt = _new_response_id(), prompt_tokens(body)
    if "functionCall" in parts[0]:
        chunks = [_response(model, response_id, parts, _usage(prompt, tokens))]
    else:
        pieces = content_pieces(parts[0]["text"])
        chunks = [
            _response(model, response_id, [{"text": piece}], _usage(prompt, count_tokens("".join(pieces[: i + 1]))))
            for i, piece in enumerate(pieces)
        ]
    chunks[-1]["candidates"][0]["finishReason"] = finish_reason
    return chunks


def event_stream(chunks: list[dict[str, Any]]) -> EventStream:
    """`data:` events only, each ended by CRLF CRLF, and no end marker: the end of the body ends the stream."""
    return EventStream([sse(chunk, end=SSE_END) for chunk in chunks], opening=0, finishing=len(chunks) - 1)


def model_resource(model_id: str, models: Sequence[SimModel] = MODELS) -> dict[str, Any]:
    model = next((m for m in models if m.id == model_id), None) or BY_ID[model_id]
    resource: dict[str, Any] = {
        "name": f"models/{model.id}",
        "version": "001",
        "displayName": model.display_name,
        "description": f"{model.display_name}, a simulated model.",
        "inputTokenLimit": model.input_token_limit,
        "outputTokenLimit": model.output_token_limit,
        "supportedGenerationMethods": ["embedContent"] if model.embeds else ["generateContent", "countTokens"],
    }
    if not model.embeds:
        resource |= {"temperature": 1, "topP": 0.95, "topK": 40, "maxTemperature": 2}
    return resource


def model_page(query: dict[str, str], models: Sequence[SimModel] = MODELS) -> dict[str, Any]:
    """GET /v1beta/models?pageSize=&pageToken=: a page of models, and nextPageToken unless it is the last."""
    try:
        size = int(query.get("pageSize", DEFAULT_PAGE_SIZE))
        start = int(query.get("pageToken") or 0)
    except ValueError:
        raise BadRequest("Invalid pageSize or pageToken.") from None
    ids = [model.id for model in models]
    if size < 1 or not 0 <= start <= len(ids):
        raise BadRequest("Invalid pageSize or pageToken.")
    selected, next_start = page(ids, start, min(size, MAX_PAGE_SIZE))
    listing: dict[str, Any] = {"models": [model_resource(model_id, models) for model_id in selected]}
    if next_start is not None:
        listing["nextPageToken"] = str(next_start)
    return listing
