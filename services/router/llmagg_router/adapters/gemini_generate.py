"""The Gemini API: OpenAI chat bodies to `models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`, its answers and chunks back.

What maps to what:
- system and developer messages -> `systemInstruction`; user -> role `user`, assistant -> role
  `model`; content parts: text, images and files (data: URLs -> `inlineData`, http(s) URLs ->
  `fileData` with the type guessed from the URL), `input_audio` -> `inlineData`.
- assistant `tool_calls` -> `functionCall` parts; `tool` messages -> `functionResponse` parts of one
  user turn (consecutive ones merged). Gemini has no call ids: the answer's calls get ids
  `call_<responseId>_<n>` (or Gemini's own `id` when it sends one), and a tool result finds its
  function's name through the assistant message that holds its `tool_call_id` (else by position
  among that message's calls, else by the message's `name`). A result that is a JSON object is the
  `response`; any other content is `{"output": <text>}`. Gemini's thought signatures ride along as
  `extra_content.google.thought_signature` on a tool call, as in Google's own OpenAI-compatible API.
- `generationConfig`: temperature, top_p -> topP, max_(completion_)tokens -> maxOutputTokens,
  stop -> stopSequences, seed, presence/frequency penalties; `response_format` json_object ->
  `responseMimeType: application/json`, json_schema -> that plus `responseJsonSchema`.
- function tools -> `functionDeclarations` (`parametersJsonSchema`: JSON Schema as OpenAI writes
  it); tool_choice none/auto/required/named -> functionCallingConfig NONE/AUTO/ANY/ANY + allowedFunctionNames.
- Not expressible (the next candidate is tried): `n` > 1, tools other than functions, other parts.
- finishReason STOP -> stop (tool_calls when the answer calls a function), MAX_TOKENS -> length,
  SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII (and a blocked prompt) -> content_filter;
  usageMetadata prompt / candidates + thoughts tokens -> prompt / completion tokens.
- Errors: 429 RESOURCE_EXHAUSTED -> RATE_LIMITED for the message's "Please retry in Ns" (exact),
  else RetryInfo.retryDelay (whole seconds); a QuotaFailure on a per-day quota cools the account
  until the quota day ends (midnight Pacific time). 400 with ErrorInfo reason API_KEY_INVALID (what
  Gemini answers a bad key with) and 403 PERMISSION_DENIED -> AUTH. An `error` object inside the
  stream is classified by its code the same way.
"""

from __future__ import annotations

import mimetypes
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from llmagg.common.secrets import Secret
from llmagg_router.adapters.http_adapter import Exchange
from llmagg_router.adapters.http_upstream import auth_headers
from llmagg_router.adapters.openai_shapes import (
    ChunkWriter,
    arguments_of,
    completion,
    data_url,
    functions_of,
    image_url,
    invalid,
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
from llmagg_router.adapters.upstream_errors import ErrorBody, classify_error, error_body, read_error
from llmagg_router.domain.upstream import Candidate, Operation, UpstreamError

PROTOCOL = "gemini"
FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"}
)
FINISH_REASONS = {"MAX_TOKENS": "length", **dict.fromkeys(FILTERED, "content_filter")}
_CONFIG_FIELDS = {
    "temperature": "temperature",
    "top_p": "topP",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


# --- the request ---------------------------------------------------------------------------------


def _inline(media_type: str, data: str) -> dict[str, Any]:
    return {"inlineData": {"mimeType": media_type, "data": data}}


def _user_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"text": str(part.get("text") or "")}
    if kind == "image_url":
        url = image_url(part)
        inline = data_url(url)
        if inline is not None:
            return _inline(*inline)
        guessed = mimetypes.guess_type(urllib.parse.urlsplit(url).path)[0] or "image/jpeg"
        return {"fileData": {"mimeType": guessed, "fileUri": url}}
    if kind == "input_audio":
        audio = part.get("input_audio") if isinstance(part.get("input_audio"), dict) else {}
        if isinstance(audio.get("data"), str):
            return _inline(f"audio/{audio.get('format') or 'wav'}", audio["data"])
    if kind == "file":
        file = part.get("file") if isinstance(part.get("file"), dict) else {}
        inline = data_url(file["file_data"]) if isinstance(file.get("file_data"), str) else None
        if inline is not None:
            return _inline(*inline)
    raise unsupported(PROTOCOL, f"{kind!r} content parts of this shape")


def _function_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    part: dict[str, Any] = {"functionCall": {"name": function.get("name"), "args": arguments_of(call)}}
    extra = call.get("extra_content")
    signature = (extra.get("google") or {}).get("thought_signature") if isinstance(extra, dict) else None
    if isinstance(signature, str):
        part["thoughtSignature"] = signature
    return part


def _function_response(content: Any) -> dict[str, Any]:
    text = text_of(content)
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"output": text}


class _Calls:
    """Which function each tool result answers: by its call's id, else by its position after the call."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._last: list[str] = []
        self._answered = 0

    def called(self, calls: list[Any]) -> None:
        self._last, self._answered = [], 0
        for call in calls:
            if isinstance(call, dict):
                name = str((call.get("function") or {}).get("name"))
                self._names[str(call.get("id"))] = name
                self._last.append(name)

    def name_for(self, message: dict[str, Any]) -> str:
        position, self._answered = self._answered, self._answered + 1
        name = self._names.get(str(message.get("tool_call_id")))
        if name is None and position < len(self._last):
            name = self._last[position]
        name = name or message.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(
                f"The tool message for tool_call_id {message.get('tool_call_id')!r} answers no tool call "
                "of an earlier assistant message.",
                "messages",
            )
        return name


def _turn(message: dict[str, Any], calls: _Calls) -> tuple[str, list[dict[str, Any]]]:
    role = message.get("role")
    if role == "user":
        return "user", [_user_part(part) for part in parts_of(message.get("content"))]
    if role == "assistant":
        text = text_of(message.get("content"))
        tool_calls = [call for call in message.get("tool_calls") or () if isinstance(call, dict)]
        calls.called(tool_calls)
        return "model", ([{"text": text}] if text else []) + [_function_call(call) for call in tool_calls]
    if role == "tool":
        response = {"name": calls.name_for(message), "response": _function_response(message.get("content"))}
        return "user", [{"functionResponse": response}]
    raise unsupported(PROTOCOL, f"messages with role {role!r}")


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = {name: body[field] for field, name in _CONFIG_FIELDS.items() if body.get(field) is not None}
    if (max_tokens := max_tokens_of(body)) is not None:
        config["maxOutputTokens"] = max_tokens
    if stops := stops_of(body):
        config["stopSequences"] = stops
    json_format = json_schema_of(body)
    if json_format is not None:
        config["responseMimeType"] = "application/json"
        if json_format[1] is not None:
            config["responseJsonSchema"] = json_format[1]
    return config


def _tools(body: dict[str, Any], payload: dict[str, Any]) -> None:
    declarations = []
    for function in functions_of(body, PROTOCOL):
        declaration = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    if not declarations:
        return
    payload["tools"] = [{"functionDeclarations": declarations}]
    choice = tool_choice_of(body)
    if choice is None:
        return
    mode = {"none": "NONE", "auto": "AUTO", "required": "ANY"}.get(choice)
    config = {"mode": mode} if mode else {"mode": "ANY", "allowedFunctionNames": [choice]}
    payload["toolConfig"] = {"functionCallingConfig": config}


def request_body(body: dict[str, Any]) -> dict[str, Any]:
    """The GenerateContentRequest for an OpenAI chat body (the model travels in the URL)."""
    one_choice(body, PROTOCOL)
    calls = _Calls()
    system, contents = turns(body, lambda message: _turn(message, calls))
    payload: dict[str, Any] = {"contents": [{"role": role, "parts": parts} for role, parts in contents]}
    if system:
        payload["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    if config := _generation_config(body):
        payload["generationConfig"] = config
    _tools(body, payload)
    return payload


def model_path(model_id: str) -> str:
    """`models/<id>` (a tuned model's `tunedModels/<id>` as it is), quoted for the URL."""
    path = model_id if model_id.startswith(("models/", "tunedModels/")) else f"models/{model_id}"
    return urllib.parse.quote(path, safe="/-._~@")


# --- the answer ----------------------------------------------------------------------------------


def _usage(metadata: Any) -> dict[str, Any] | None:
    if not isinstance(metadata, dict):
        return None
    thoughts = token_count(metadata, "thoughtsTokenCount")
    return usage(
        token_count(metadata, "promptTokenCount") + token_count(metadata, "toolUsePromptTokenCount"),
        token_count(metadata, "candidatesTokenCount") + thoughts,
        cached=token_count(metadata, "cachedContentTokenCount"),
        reasoning=thoughts,
    )


def _finish_reason(reason: Any, called: bool) -> str:
    if reason in FINISH_REASONS:
        return FINISH_REASONS[reason]
    return "tool_calls" if called else "stop"


def _call_id(part: dict[str, Any], response_id: str, index: int) -> str:
    given = part["functionCall"].get("id")
    if isinstance(given, str) and given:
        return given
    return f"call_{response_id or uuid.uuid4().hex[:16]}_{index}"


def _gemini_tool_call(part: dict[str, Any], response_id: str, index: int, streamed: bool) -> dict[str, Any]:
    function = part["functionCall"]
    arguments = orjson.dumps(function.get("args") or {}).decode()
    call = tool_call(
        _call_id(part, response_id, index), str(function.get("name")), arguments, index if streamed else None
    )
    if isinstance(part.get("thoughtSignature"), str):
        call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return call


def _parts(response: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The first candidate and its parts, thoughts left out."""
    candidates = response.get("candidates")
    candidate = candidates[0] if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict) else {}
    content = candidate.get("content") if isinstance(candidate.get("content"), dict) else {}
    parts = [p for p in content.get("parts") or () if isinstance(p, dict) and not p.get("thought")]
    return candidate, parts


def _blocked(response: dict[str, Any]) -> bool:
    """The prompt itself was blocked: no candidate, a promptFeedback.blockReason."""
    feedback = response.get("promptFeedback")
    return not response.get("candidates") and isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def completion_of(response: dict[str, Any]) -> dict[str, Any]:
    """A `chat.completion` for a GenerateContentResponse."""
    response_id = str(response.get("responseId") or "")
    candidate, parts = _parts(response)
    texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
    calls = [
        _gemini_tool_call(part, response_id, index, streamed=False)
        for index, part in enumerate(p for p in parts if isinstance(p.get("functionCall"), dict))
    ]
    reason = "SAFETY" if _blocked(response) else candidate.get("finishReason")
    return completion(
        response_id,
        str(response.get("modelVersion") or ""),
        "".join(texts) if texts or not calls else None,
        calls,
        _finish_reason(reason, bool(calls)),
        _usage(response.get("usageMetadata")),
    )


class GeminiEvents:
    """streamGenerateContent chunks -> OpenAI chunks: text, whole function calls, finish, usage."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._out = ChunkWriter(body)
        self._calls = 0

    def feed(self, event: dict[str, Any]) -> Iterable[dict[str, Any]]:
        if "error" in event:
            raise _stream_error(event["error"])
        out = self._out
        out.id = str(event.get("responseId") or out.id)
        out.model = str(event.get("modelVersion") or out.model)
        out.usage = _usage(event.get("usageMetadata")) or out.usage
        chunks = list(out.start())
        candidate, parts = _parts(event)
        for part in parts:
            if isinstance(part.get("text"), str) and part["text"]:
                chunks.append(out.text(part["text"]))
            elif isinstance(part.get("functionCall"), dict):
                chunks.append(out.chunk({"tool_calls": [_gemini_tool_call(part, out.id, self._calls, streamed=True)]}))
                self._calls += 1
        reason = "SAFETY" if _blocked(event) else candidate.get("finishReason")
        if reason:
            chunks.append(out.finish(_finish_reason(reason, self._calls > 0)))
        return chunks

    def end(self) -> Iterable[dict[str, Any]]:
        return self._out.end(PROTOCOL)


# --- errors --------------------------------------------------------------------------------------


def _classify(status: int, headers: Mapping[str, str], body: ErrorBody) -> UpstreamError:
    """As every protocol classifies (Google's details included); a client's error names Google's status
    as its code and the first field a BadRequest names as its param."""
    violations = [
        violation
        for bad in body.details("BadRequest")
        for violation in bad.get("fieldViolations") or ()
        if isinstance(violation, dict) and violation.get("field")
    ]
    status_name = body.error.get("status")
    fields = {
        **body.fields,
        "type": "invalid_request_error" if 400 <= status < 500 else body.fields["type"],
        "code": status_name if isinstance(status_name, str) else body.fields["code"],
        "param": str(violations[0]["field"]) if violations else body.fields["param"],
    }
    return classify_error(status, headers, ErrorBody(body.message, fields, body.error))


def classify(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    return _classify(status, headers, read_error(raw))


def _stream_error(error: Any) -> UpstreamError:
    """An `error` object in place of a chunk, classified by its code as the same error answered over HTTP."""
    error = error if isinstance(error, dict) else {"message": error}
    code = error.get("code")
    classified = _classify(code if isinstance(code, int) else 500, {}, error_body(error))
    return UpstreamError(
        classified.failure, f"error event in stream: {classified.message}", retry_after_s=classified.retry_after_s
    )


class GeminiDialect:
    def exchange(
        self, candidate: Candidate, key: Secret | None, operation: Operation, body: dict[str, Any]
    ) -> Exchange:
        if operation is not Operation.CHAT:
            raise unsupported(PROTOCOL, "embeddings")
        streamed = bool(body.get("stream"))
        action = ":streamGenerateContent?alt=sse" if streamed else ":generateContent"
        return Exchange(
            f"{candidate.account.base_url}/{model_path(candidate.model_id)}{action}",
            auth_headers(candidate, key),
            request_body(body),
            completion_of,
            lambda: GeminiEvents(body),
        )

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return classify(status, headers, raw)
