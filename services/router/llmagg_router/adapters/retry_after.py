"""How long an upstream asks us to wait, read from whatever hint the provider gives."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_IN_MESSAGE = re.compile(r"(?:try again|retry) in (\d+(?:\.\d+)?)\s*(ms|s|m)?", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Go-style durations as in x-ratelimit-reset-*: "1s", "6m0s", "12ms", "1h2m3.5s"; or bare seconds."""
    text = text.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _retry_after_header(value: str, now: float) -> float | None:
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)


def retry_after_seconds(headers: Mapping[str, str], message: str = "") -> float | None:
    """Seconds to wait, or None when the upstream gave no hint. Header names must be lowercase."""
    if "retry-after-ms" in headers:
        try:
            return max(float(headers["retry-after-ms"]) / 1000.0, 0.0)
        except ValueError:
            pass
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
        return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if any_reset:
        return min(any_reset)
    return None
