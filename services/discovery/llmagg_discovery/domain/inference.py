"""What can be said of a model from its id alone, when no source says it: a quality tier, an alias."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_PARAMETERS = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)b(?![a-z])")
_SUFFIXES = ("-instruct", "-it", "-versatile", "-instant", "-turbo", "-fp8", "-latest", "-chat", "-fast")


_NOT_CHAT = re.compile(
    r"whisper|tts|transcri|speech|audio|guard|moderation|rerank|orpheus|playai|dall-e|image|ocr|safety", re.IGNORECASE
)


def guess_type(model_id: str) -> str:
    """chat, embedding, or other (audio, guard, rerank, image ...: listed by a provider, never routed)."""
    if "embed" in model_id.lower():
        return "embedding"
    if _NOT_CHAT.search(model_id):
        return "other"
    return "chat"


def guess_quality(model_id: str) -> int:
    """1 tiny (<10B) .. 4 strong (>100B) from the parameter count in the id; 3 when it names none."""
    found = [float(n) for n in _PARAMETERS.findall(model_id.lower())]
    if not found:
        return 3
    size = max(found)
    if size < 10:
        return 1
    if size <= 40:
        return 2
    if size <= 100:
        return 3
    return 4


def stem(model_id: str) -> str:
    """The family part of an id: `meta-llama/Llama-4-Scout-17B-16E-Instruct:free` -> `llama-4-scout-17b-16e`."""
    text = model_id.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if text.endswith(suffix) and len(text) > len(suffix):
                text, changed = text[: -len(suffix)], True
    return text


def alias_index(aliases: Iterable[str]) -> Mapping[str, str]:
    return {alias: alias for alias in aliases}


def inferred_alias(model_id: str, known: Mapping[str, str]) -> str | None:
    """A known cross-provider alias this id is a member of, if its stem is one."""
    return known.get(stem(model_id))
