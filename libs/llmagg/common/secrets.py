"""Key material that never shows itself, and the exact redaction of every key this process holds.

Every `Secret` registers its value: `redact()` then removes each known value, whatever its shape,
from any text (an upstream's error message, a log line, a traceback). Pattern-based scrubbing
(`llmagg.common.logging.scrub`) catches the usual key shapes; this catches the rest (a 32-character
Mistral or Cloudflare key looks like any other word).
"""

from __future__ import annotations

import re
import threading

REDACTED = "[redacted]"
# Values shorter than this are not keys (and replacing them would mangle ordinary words).
MIN_SECRET_LENGTH = 8
MAX_KNOWN_SECRETS = 10_000

# Up to this many known values, a text is first searched for each (`in`): cheaper than the pattern when
# none is there (most texts, e.g. every log line).
_FEW_SECRETS = 16

_known: dict[str, None] = {}  # insertion-ordered set: the oldest are forgotten first when full
# The pattern of every known value, and the values themselves when they are few.
_compiled: tuple[re.Pattern[str], tuple[str, ...]] | None = None
_lock = threading.Lock()


def _remember(value: str) -> None:
    global _compiled
    if len(value) < MIN_SECRET_LENGTH or value in _known:
        return
    with _lock:
        _known[value] = None
        while len(_known) > MAX_KNOWN_SECRETS:
            del _known[next(iter(_known))]
        _compiled = None  # rebuilt on the next redact()


def redact(text: str) -> str:
    """`text` with every known key value replaced by [redacted]."""
    global _compiled
    if not _known or len(text) < MIN_SECRET_LENGTH:  # no known value is shorter
        return text
    compiled = _compiled
    if compiled is None:
        with _lock:
            # Longest first, so a key that contains another is removed whole.
            alternatives = sorted(_known, key=len, reverse=True)
            pattern = re.compile("|".join(re.escape(value) for value in alternatives))
            compiled = _compiled = (pattern, tuple(alternatives) if len(alternatives) <= _FEW_SECRETS else ())
    pattern, few = compiled
    if few:
        for value in few:
            if value in text:
                return pattern.sub(REDACTED, text)
        return text
    return pattern.sub(REDACTED, text)


class Secret:
    """A credential that never shows itself in repr, str, logs or tracebacks; `reveal()` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        _remember(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
