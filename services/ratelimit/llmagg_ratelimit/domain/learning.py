"""What upstreams say about their quotas, turned into learned limits and caps.

- `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (OpenAI, Groq, OpenRouter, ...): remaining
  and reset become a cap, "at most N more until then" (true whatever window or bucket the provider
  keeps: Groq's limit-requests is per day, OpenAI's per minute);
- Cerebras-style `x-ratelimit-limit-requests-day`, `...-tokens-minute` name their window: the limit is
  learned for it (the tightest of it and the configured one applies), and remaining/reset are a cap;
- `anthropic-ratelimit-{requests,tokens}-{remaining,reset}` (reset is an RFC 3339 time): a cap;
- a 429 (or 529): nothing more until the wait the router read (Retry-After, retry-after-ms, the
  resets, Gemini's RetryInfo or "retry in" text); Gemini's QuotaFailure names a per-day quota: nothing
  more until the provider's day resets.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from llmagg_ratelimit.domain.limits import LimitBook, QuotaKey, cap_counter, cap_key, learned_limit_key
from llmagg_ratelimit.domain.ports import Cap, LearnedLimit
from llmagg_ratelimit.domain.windows import Dimension, Window, bounds

LEARNED_FOR_S = 7 * 86400.0  # a limit a provider named is believed this long after it last said so
MAX_WAIT_S = 86400.0 * 31
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_WINDOW_SUFFIX = {"minute": ("m", Window.MINUTE), "day": ("d", Window.DAY), "hour": ("h", Window.HOUR)}
_DAILY_QUOTA = re.compile(r"per ?day|daily", re.IGNORECASE)


def parse_duration(text: str) -> float | None:
    """Go-style durations ("1s", "6m0s", "12ms", "1h2m3.5s") or bare seconds; None when unreadable."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            return None
        value = sum(float(number) * _UNITS[unit] for number, unit in parts)
    return value if math.isfinite(value) and value >= 0 else None


def _rfc3339(text: str, now: float) -> float | None:
    try:
        when = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now, 0.0)


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value >= 0 else None


@dataclass(frozen=True)
class Lesson:
    limits: tuple[LearnedLimit, ...] = ()
    caps: tuple[Cap, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.limits or self.caps)


_NOTHING = Lesson()


def learn(
    book: LimitBook,
    key: QuotaKey,
    status: int,
    headers: Mapping[str, str],
    retry_after_s: float,
    quota_id: str,
    now: float,
) -> Lesson:
    """What one upstream answer teaches about `key`'s quota."""
    if not headers and status not in (429, 529):
        return _NOTHING  # most answers: a provider that names no quota, or none the router kept
    scope = book.reporting_scope(key)
    caps: dict[Dimension, Cap] = {}
    limits: list[LearnedLimit] = []

    def cap(dimension: Dimension, remaining: int, wait: float) -> None:
        wait = min(wait, MAX_WAIT_S)
        if wait <= 0:
            return
        new = Cap(cap_key(scope, dimension), cap_counter(scope, dimension), remaining, now + wait)
        old = caps.get(dimension)
        # Of two things a provider says, keep the one that allows less, for longer.
        if old is None or (new.remaining, -new.until) < (old.remaining, -old.until):
            caps[dimension] = new

    for dimension in Dimension:
        kind = dimension.value
        remaining = _count(headers.get(f"x-ratelimit-remaining-{kind}"))
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}", ""))
        if remaining is not None and reset is not None:
            cap(dimension, remaining, reset)
        for suffix, (letter, window) in _WINDOW_SUFFIX.items():
            named = _count(headers.get(f"x-ratelimit-limit-{kind}-{suffix}"))
            name = f"{kind[0]}p{letter}"
            if named is not None and named > 0 and name in ("rpm", "rpd", "tpm", "tpd"):
                limits.append(LearnedLimit(learned_limit_key(scope, name), named, now + LEARNED_FOR_S))
            left = _count(headers.get(f"x-ratelimit-remaining-{kind}-{suffix}"))
            wait = parse_duration(headers.get(f"x-ratelimit-reset-{kind}-{suffix}", ""))
            if left is not None:
                if wait is None:
                    wait = bounds(window, now, book.timezone(key.provider))[1] - now
                cap(dimension, left, wait)
        left = _count(headers.get(f"anthropic-ratelimit-{kind}-remaining"))
        reset_at = headers.get(f"anthropic-ratelimit-{kind}-reset")
        wait = _rfc3339(reset_at, now) if reset_at else None
        if left is not None and wait is not None:
            cap(dimension, left, wait)
    if status in (429, 529):
        wait = retry_after_s
        if quota_id and _DAILY_QUOTA.search(quota_id):
            wait = max(wait, bounds(Window.DAY, now, book.timezone(key.provider))[1] - now)
        cap(Dimension.REQUESTS, 0, wait)
    return Lesson(tuple(limits), tuple(caps.values()))
