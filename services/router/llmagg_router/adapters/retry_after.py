"""How long an upstream asks us to wait, read from whatever hint the provider gives."""

from __future__ import annotations

import datetime
import email.utils
import math
import re
import time
from collections.abc import Mapping

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_IN_MESSAGE = re.compile(r"(?:try again|retry) in (\d+(?:\.\d+)?)\s*(ms|s|m)?", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# No hint is believed beyond a day: `Retry-After: 1e300` (or a date in 3026) must not bench an account
# until the next restart.
MAX_WAIT_S = 86400.0


def _seconds(value: float) -> float | None:
    """A wait the router can act on: finite, not negative, at most a day; None for inf and nan."""
    if not math.isfinite(value):
        return None
    return min(max(value, 0.0), MAX_WAIT_S)


def _number(text: str, unit_s: float = 1.0) -> float | None:
    try:
        return _seconds(float(text) * unit_s)
    except ValueError:
        return None


def parse_duration(text: str) -> float | None:
    """Go-style durations as in x-ratelimit-reset-*: "1s", "6m0s", "12ms", "1h2m3.5s"; or bare seconds."""
    text = text.strip()
    if (plain := _number(text)) is not None:
        return plain
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return _seconds(sum(float(number) * _UNITS[unit] for number, unit in parts))


def seconds_until(moment: str, now: float) -> float | None:
    """Seconds from `now` to an RFC 3339 time ("2025-01-31T12:00:05Z"), as Anthropic's reset headers write it."""
    try:
        when = datetime.datetime.fromisoformat(moment.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return _seconds(when.timestamp() - now)


def _retry_after_header(value: str, now: float) -> float | None:
    if (plain := _number(value)) is not None:
        return plain
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return _seconds(when.timestamp() - now)


def retry_after_seconds(headers: Mapping[str, str], message: str = "") -> float | None:
    """Seconds to wait, or None when the upstream gave no hint. Header names must be lowercase."""
    if "retry-after-ms" in headers and (seconds := _number(headers["retry-after-ms"], 0.001)) is not None:
        return seconds
    if "retry-after" in headers:
        seconds = _retry_after_header(headers["retry-after"], time.time())
        if seconds is not None:
            return seconds
    exhausted, any_reset = [], []
    for dimension in ("requests", "tokens"):
        reset = headers.get(f"x-ratelimit-reset-{dimension}")
        seconds = parse_duration(reset) if reset else None
        if seconds is None:
            continue
        any_reset.append(seconds)
        if headers.get(f"x-ratelimit-remaining-{dimension}") == "0":
            exhausted.append(seconds)
    if exhausted:
        return max(exhausted)
    match = _IN_MESSAGE.search(message)
    if match:
        return _seconds(float(match.group(1)) * _UNITS[match.group(2) or "s"])
    if any_reset:
        return min(any_reset)
    return None
