"""A streamed chat answer put back together as the one `chat.completion` a non-stream client expects.

The router asks upstreams for a stream even when the client did not: the first chunk shows within
seconds that a provider is alive, where a whole answer can take a minute to start arriving, so a
hung provider costs a first-byte timeout and not a read timeout.

The chunks are the router's own freshly parsed objects, used once: their values are taken over, not
copied. Text cut in pieces is gathered and joined once at the end: adding each piece to the text so far
would copy the whole text per piece (a 32k-token answer: a sixth of a second of the loop, growing with
the square of its length).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Fields that name or classify a thing rather than carry a piece of it: repeated, they are the same.
_SET_NOT_JOINED = frozenset({"index", "type", "id", "role"})


class _Pieces(list[str]):
    """A text's pieces so far, joined by `_joined` once every chunk is in."""


def _merge(target: dict[str, Any], delta: dict[str, Any]) -> None:
    for key, value in delta.items():
        current = target.get(key)
        if value is None:
            target.setdefault(key, None)
        elif current is None or key in _SET_NOT_JOINED:
            target[key] = value
        elif type(current) is _Pieces:
            if isinstance(value, str):
                current.append(value)
            else:
                target[key] = value  # as over a whole text: a value of another kind replaces it
        elif isinstance(current, str) and isinstance(value, str):
            if key == "name":  # a provider that repeats a whole name in every chunk must not double it
                target[key] = value if value == current else current + value
            else:
                target[key] = _Pieces((current, value))
        elif isinstance(current, dict) and isinstance(value, dict):
            _merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            _merge_list(current, value)
        else:
            target[key] = value


def _merge_list(target: list[Any], delta: list[Any]) -> None:
    """Entries with an `index` (tool calls) merge into the entry of that index; others are appended."""
    for entry in delta:
        if isinstance(entry, dict) and isinstance(entry.get("index"), int):
            existing = next((t for t in target if isinstance(t, dict) and t.get("index") == entry["index"]), None)
            if existing is not None:
                _merge(existing, entry)
                continue
        target.append(entry)


def assemble(chunks: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The `chat.completion` the chunks of one stream describe."""
    completion: dict[str, Any] = {"object": "chat.completion"}
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for key, value in chunk.items():
            if key not in ("choices", "object") and value is not None:
                completion[key] = value
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            target = choices.setdefault(
                index, {"index": index, "message": {"role": "assistant"}, "logprobs": None, "finish_reason": None}
            )
            _merge(target["message"], choice.get("delta") or {})
            for key, value in choice.items():
                if key in ("index", "delta") or value is None:
                    continue
                if key == "logprobs" and isinstance(target["logprobs"], dict) and isinstance(value, dict):
                    _merge(target["logprobs"], value)
                else:
                    target[key] = value
    for choice in choices.values():
        choice["message"].setdefault("content", None)
        _joined(choice)
    completion["choices"] = [choices[index] for index in sorted(choices)]
    return completion


def _joined(value: dict[str, Any] | list[Any]) -> None:
    """Every text gathered in pieces under `value`, joined."""
    for key, item in value.items() if isinstance(value, dict) else enumerate(value):
        if type(item) is _Pieces:
            value[key] = "".join(item)
        elif isinstance(item, (dict, list)):
            _joined(item)
