"""What kind of task a request is (code, math, JSON, tool use, long context, chat) and in which script
it is written, read cheaply from the request already parsed: no model call, only the last user
message's first few thousand characters are scanned. The meta-controller keeps its estimates per
profile key (meta_controller.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmagg_router.domain.request import ParsedRequest
from llmagg_router.domain.upstream import Operation

LONG_CONTEXT_TOKENS = 16_000  # a prompt estimated above this is a long-context task whatever it asks
SCANNED_CHARS = 4_000  # of the last user message: enough to tell the kind, bounded in cost
KINDS = ("chat", "code", "math", "json", "tools", "long", "embedding")

_CODE = re.compile(
    r"```|^\s*(def|class|import|from \S+ import|function|const|let|var|public|#include|fn|func)\b|"
    r"\b(python|javascript|typescript|golang|rust|java|c\+\+|sql|regex|function|compile|stack trace|bug)\b",
    re.IGNORECASE | re.MULTILINE,
)
_MATH = re.compile(
    r"\d\s*[-+*/^\u00d7\u00f7=]\s*\d|\b(solve|equation|integral|derivative|calculate|compute|sum of|probability|"
    r"prime|sqrt|factorial)\b",
    re.IGNORECASE,
)
_JSON = re.compile(r"\bjson\b", re.IGNORECASE)
_SCRIPTS = (
    ("cyrillic", re.compile(r"[\u0400-\u04ff]")),
    ("cjk", re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")),
    ("arabic", re.compile(r"[\u0600-\u06ff]")),
    ("devanagari", re.compile(r"[\u0900-\u097f]")),
    ("greek", re.compile(r"[\u0370-\u03ff]")),
    ("hebrew", re.compile(r"[\u0590-\u05ff]")),
)


@dataclass(frozen=True)
class TaskProfile:
    kind: str  # one of KINDS
    language: str  # the script of the last user message: latin, cyrillic, cjk, arabic, ...

    @property
    def key(self) -> str:
        """What the meta-controller's estimates are kept under: the kind, and the script when not latin
        (a model good at English code may be poor at Chinese chat)."""
        return self.kind if self.language == "latin" else f"{self.kind}/{self.language}"


def profile_of(request: ParsedRequest) -> TaskProfile:
    if request.operation is not Operation.CHAT:
        return TaskProfile("embedding", "latin")
    text = _last_user_text(request.upstream_body.get("messages"))
    return TaskProfile(_kind(request, text), _script(text))


def _kind(request: ParsedRequest, text: str) -> str:
    needs = request.preferences.needs
    if "tools" in needs:
        return "tools"
    if request.prompt_tokens > LONG_CONTEXT_TOKENS:
        return "long"
    if "json_object" in needs or "json_schema" in needs or _JSON.search(text):
        return "json"
    if _CODE.search(text):
        return "code"
    if _MATH.search(text):
        return "math"
    return "chat"


def _script(text: str) -> str:
    if text.isascii():  # every script above is outside ASCII
        return "latin"
    for name, pattern in _SCRIPTS:
        if pattern.search(text):
            return name
    return "latin"


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _text_of(message.get("content"))[:SCANNED_CHARS]
    return ""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content[:SCANNED_CHARS]
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)]
        return " ".join(parts)
    return ""
