"""A cheap token estimate of a request, for reserving quota before the provider counts for real."""

from __future__ import annotations

from typing import Any

from llmagg_router.domain.request_values import is_whole_number

CHARS_PER_TOKEN = 4  # English text and code average about four characters a token in BPE vocabularies
DEFAULT_COMPLETION_TOKENS = 256  # reserved when the request does not cap its answer
# The most of an answer a request is metered for when its model's window is unknown: above every
# context window there is (2M), far below what the ledger takes (10**9 tokens). A `max_tokens` of 2**31
# is valid, but no answer can be that long.
MAX_METERED_COMPLETION_TOKENS = 2_000_000


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


def requested_completion_tokens(body: dict[str, Any]) -> int | None:
    """The answer's cap the request sets (`max_completion_tokens`, else `max_tokens`), when it sets one."""
    completion = body.get("max_completion_tokens") or body.get("max_tokens")
    if not is_whole_number(completion) or completion < 1:
        return None
    return int(min(completion, 2**63 - 1))


def completion_allowance(body: dict[str, Any], completion: int | None) -> int:
    """The answer's tokens the request may use, for metering: its cap (`requested_completion_tokens`, or a
    default for chat), never more than the metering maximum (a candidate's context window clamps it
    further: see walk.py)."""
    if completion is None:
        completion = DEFAULT_COMPLETION_TOKENS if "messages" in body else 0
    return min(completion, MAX_METERED_COMPLETION_TOKENS)
