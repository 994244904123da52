"""What every simulated model says, whatever its dialect: the reply text, its tokens, the tool call's arguments."""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass
from typing import Any

ECHO_PREFIX = "echo:"
_WORD = re.compile(r"\S+")
# The key the request came with while an `echo_key` fault answers it: the model then quotes it.
ECHOED_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar("echoed_key", default=None)


def count_tokens(text: str) -> int:
    """The simulator's tokenizer: whitespace-separated words, at least 1."""
    return max(1, len(text.split()))


def reply_text(provider: str, model: str, last_user_text: str | None) -> str:
    """`Hello from <provider> (<model>).`, or what follows `echo:` in the last user message (or, under
    `echo_key`, the key the request came with)."""
    if (key := ECHOED_KEY.get()) is not None:
        return f"Your key is {key} indeed."
    if last_user_text is not None and last_user_text.startswith(ECHO_PREFIX):
        return last_user_text[len(ECHO_PREFIX) :].removeprefix(" ")
    return f"Hello from {provider} ({model})."


def content_pieces(text: str) -> list[str]:
    """One piece per word, spaces kept in front, so the pieces concatenate to exactly `text`.

    Under `echo_key` a word holding the key is cut in two in the middle of the key (a key split across events)."""
    words = text.split(" ")
    pieces = [words[0], *(" " + word for word in words[1:])]
    key = ECHOED_KEY.get()
    if not key:
        return pieces
    split = []
    for piece in pieces:
        at = piece.find(key)
        if at == -1:
            split.append(piece)
        else:
            middle = at + len(key) // 2
            split += [piece[:middle], piece[middle:]]
    return split


def halves(text: str) -> list[str]:
    """A tool call's arguments as they stream: two pieces that concatenate to `text`."""
    half = len(text) // 2
    return [text[:half], text[half:]]


def sim_arguments(schema: Any) -> dict[str, str]:
    """The arguments of the simulated tool call: each required parameter of the JSON schema set to "sim" (the
    key the request came with, under `echo_key`)."""
    required = schema.get("required") if isinstance(schema, dict) else None
    return dict.fromkeys((name for name in required or [] if isinstance(name, str)), ECHOED_KEY.get() or "sim")


@dataclass(frozen=True)
class Shaped:
    """The reply after the request's limits: its text, and why it ended."""

    text: str
    ended_by: str  # "end", "max_tokens" or "stop_sequence"
    stop_sequence: str | None = None


def shape_reply(text: str, max_tokens: int | None = None, stop_sequences: list[str] | None = None) -> Shaped:
    """Cut `text` before the earliest stop sequence, then after `max_tokens` words."""
    ended_by, matched = "end", None
    found = [(text.find(s), s) for s in stop_sequences or [] if s and s in text]
    if found:
        position, matched = min(found)
        text, ended_by = text[:position], "stop_sequence"
    words = list(_WORD.finditer(text))
    if max_tokens is not None and len(words) > max_tokens:
        text, ended_by, matched = text[: words[max_tokens - 1].end()], "max_tokens", None
    return Shaped(text, ended_by, matched)
