"""Contextual chat: the editor's prompt, selection and active file as one OpenAI chat request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmagg.common.errors import ErrorKind, ServiceError

MODEL_QUALITIES = ("fastest", "balanced", "best_quality")


@dataclass(frozen=True)
class ContextualChat:
    prompt: str
    selected_text: str | None = None
    active_file_content: str | None = None
    active_file_name: str | None = None
    language: str | None = None
    model: str | None = None
    provider: str | None = None
    model_quality: str | None = None
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)


def check_model_quality(value: str | None) -> str | None:
    if value and value not in MODEL_QUALITIES:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            f"model_quality must be one of {', '.join(MODEL_QUALITIES)}; got {value!r}",
            code="invalid_model_quality",
            param="model_quality",
        )
    return value or None


def fenced(text: str, language: str | None) -> str:
    """`text` in a Markdown code block whose fence is longer than any backtick run inside it."""
    longest = run = 0
    for character in text:
        run = run + 1 if character == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language or ''}\n{text}\n{fence}"


def prompt_text(request: ContextualChat, max_file_chars: int) -> str:
    """The user message: the prompt, then the selected code, then the active file (cut to `max_file_chars`)."""
    parts = [request.prompt]
    of_file = f" from {request.active_file_name}" if request.active_file_name else ""
    if request.selected_text:
        parts.append(f"## Selected code{of_file}\n{fenced(request.selected_text, request.language)}")
    if request.active_file_content:
        content = request.active_file_content
        title = f"## Active file {request.active_file_name}" if request.active_file_name else "## Active file"
        if len(content) > max_file_chars:
            content = content[:max_file_chars]
            title += f" (its first {max_file_chars} of {len(request.active_file_content)} characters)"
        parts.append(f"{title}\n{fenced(content, request.language)}")
    return "\n\n".join(parts)


def chat_body(request: ContextualChat, max_file_chars: int) -> dict[str, Any]:
    """The OpenAI chat completion request the router gets."""
    if not request.prompt.strip():
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT, "prompt must not be empty", code="invalid_prompt", param="prompt"
        )
    body: dict[str, Any] = {
        "model": request.model or "auto",
        "messages": [{"role": "user", "content": prompt_text(request, max_file_chars)}],
        "stream": request.stream,
    }
    optional = {
        "provider": request.provider,
        "model_quality": check_model_quality(request.model_quality),
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stop": request.stop or None,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body
