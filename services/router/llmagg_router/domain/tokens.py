"""A cheap token estimate of a request, for reserving quota before the provider counts for real."""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4  # English text and code average about four characters a token in BPE vocabularies
DEFAULT_COMPLETION_TOKENS = 256  # reserved when the request does not cap its answer


def _text_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_length(item) for item in value)
    if isinstance(value, dict):
        return _text_length(value.get("content")) + _text_length(value.get("text"))
    return 0


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Tokens of the prompt's text (messages or input)."""
    return (_text_length(body.get("messages")) + _text_length(body.get("input"))) // CHARS_PER_TOKEN + 1


def completion_allowance(body: dict[str, Any]) -> int:
    """The answer's tokens the request may use: its cap, or a default for chat."""
    completion = body.get("max_completion_tokens") or body.get("max_tokens")
    if not isinstance(completion, int) or isinstance(completion, bool) or completion < 0:
        completion = DEFAULT_COMPLETION_TOKENS if "messages" in body else 0
    return completion
