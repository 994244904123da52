"""Quota windows as providers define them: fixed windows that reset at the provider's boundaries.

Minute and hour windows are aligned to the Unix epoch (every provider resets them on the minute and
the hour); day and month windows follow the provider's reset rule: midnight (and the first of the
month) in the provider's `reset_timezone`, UTC unless the registry says otherwise (Google AI Studio
resets at midnight Pacific). A day in a zone with daylight saving lasts 23 or 25 hours twice a year.

Every function here is pure: times are seconds since the Unix epoch, passed in.
"""

from __future__ import annotations

import datetime
import enum
import functools
import math
from zoneinfo import ZoneInfo


class Window(enum.Enum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class Dimension(enum.Enum):
    REQUESTS = "requests"
    TOKENS = "tokens"


_FIXED_S = {Window.MINUTE: 60, Window.HOUR: 3600}


@functools.lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The time zone named `name` (IANA); ZoneInfoNotFoundError for an unknown name."""
    return ZoneInfo(name)


def _local_midnight(day: datetime.date, tz: ZoneInfo) -> float:
    return datetime.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


_LAST: dict[tuple[Window, str], tuple[float, float]] = {}  # the window each (window, zone) was last asked for


def bounds(window: Window, now: float, tz: str = "UTC") -> tuple[float, float]:
    """(start, end) of the window that contains `now`: start <= now < end."""
    last = _LAST.get((window, tz))
    if last is not None and last[0] <= now < last[1]:
        return last  # the same window as last time: no calendar arithmetic on the hot path
    found = _bounds(window, now, tz)
    if len(_LAST) < 1024:
        _LAST[(window, tz)] = found
    return found


def _bounds(window: Window, now: float, tz: str) -> tuple[float, float]:
    if window in _FIXED_S:
        size = _FIXED_S[window]
        start = math.floor(now / size) * size
        return float(start), float(start + size)
    zone_info = zone(tz)
    # Whole seconds: fromtimestamp rounds to the microsecond, and a time a hair before midnight would
    # round into the next day. Midnights fall on whole seconds, so the floor is in the same window.
    local = datetime.datetime.fromtimestamp(math.floor(now), zone_info)
    if window is Window.DAY:
        first, following = local.date(), local.date() + datetime.timedelta(days=1)
    else:
        first = local.date().replace(day=1)
        following = (first + datetime.timedelta(days=32)).replace(day=1)
    # Where midnight does not exist (a zone that skips it for daylight saving), the offset before the
    # gap places it at the gap itself: the first instant of that local day.
    return _local_midnight(first, zone_info), _local_midnight(following, zone_info)


def window_id(window: Window, now: float, tz: str = "UTC") -> int:
    """A number naming the window that holds `now`: its start, whole seconds."""
    return int(bounds(window, now, tz)[0])


def seconds_left(window: Window, now: float, tz: str = "UTC") -> float:
    """Seconds until the window that holds `now` ends (the wait a denial in it announces)."""
    return bounds(window, now, tz)[1] - now
