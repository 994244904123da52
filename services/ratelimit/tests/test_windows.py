"""Window arithmetic and reset rules, as properties over any time and the zones providers reset in."""

import datetime
import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmagg_ratelimit.domain.windows import Window, bounds, seconds_left, window_id, zone

# UTC, Pacific (Google), zones with half- and three-quarter-hour offsets, zones whose daylight
# saving skips or repeats midnight, and one with a 30-minute daylight shift.
ZONES = [
    "UTC", "America/Los_Angeles", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Chatham", "America/Havana",
    "America/Santiago", "Asia/Beirut", "Australia/Lord_Howe", "Europe/London", "America/Sao_Paulo",
]  # fmt: skip
TIMES = st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False)  # 1970 .. 2100
WINDOWS = st.sampled_from(list(Window))


@example(2051222399.9999995, Window.DAY, "UTC")  # rounds to the next day's first microsecond
@given(TIMES, WINDOWS, st.sampled_from(ZONES))
def test_the_window_of_a_time_holds_it(now, window, tz):
    start, end = bounds(window, now, tz)
    assert start <= now < end


@given(TIMES, WINDOWS, st.sampled_from(ZONES))
def test_the_next_window_starts_where_this_one_ends(now, window, tz):
    start, end = bounds(window, now, tz)
    assert bounds(window, end, tz)[0] == end
    # and every instant of the window names the same window
    assert window_id(window, start, tz) == window_id(window, now, tz) == window_id(window, end - 0.001, tz)


@given(TIMES, st.sampled_from(ZONES))
def test_minutes_and_hours_are_aligned_to_the_epoch_in_every_zone(now, tz):
    assert bounds(Window.MINUTE, now, tz) == (now // 60 * 60, now // 60 * 60 + 60)
    assert bounds(Window.HOUR, now, tz) == (now // 3600 * 3600, now // 3600 * 3600 + 3600)


@example(2051222399.9999995, "UTC")
@given(TIMES, st.sampled_from(ZONES))
def test_a_day_starts_at_local_midnight_and_lasts_23_to_25_hours(now, tz):
    start, end = bounds(Window.DAY, now, tz)
    local_start = datetime.datetime.fromtimestamp(start, zone(tz))
    local_now = datetime.datetime.fromtimestamp(math.floor(now), zone(tz))  # not rounded into the next day
    assert local_start.date() == local_now.date()
    assert (local_start.hour, local_start.minute) in ((0, 0), (1, 0))  # 01:00 where midnight is skipped
    assert 23 * 3600 <= end - start <= 25 * 3600


@given(TIMES)
def test_a_utc_day_resets_at_utc_midnight(now):
    start, end = bounds(Window.DAY, now)
    assert start % 86400 == 0 and end - start == 86400


@example(2051222399.9999995, "UTC")
@given(TIMES, st.sampled_from(ZONES))
def test_a_month_starts_on_the_first_at_local_midnight(now, tz):
    start, end = bounds(Window.MONTH, now, tz)
    local_start = datetime.datetime.fromtimestamp(start, zone(tz))
    local_now = datetime.datetime.fromtimestamp(math.floor(now), zone(tz))
    assert (local_start.year, local_start.month, local_start.day) == (local_now.year, local_now.month, 1)
    assert 28 * 86400 - 3600 <= end - start <= 31 * 86400 + 3600


@given(TIMES, WINDOWS, st.sampled_from(ZONES))
def test_the_wait_a_denial_announces_is_positive_and_within_one_window(now, window, tz):
    start, end = bounds(window, now, tz)
    assert 0 < seconds_left(window, now, tz) <= end - start


@settings(max_examples=50)
@given(st.integers(min_value=0, max_value=2_000_000_000), WINDOWS, st.sampled_from(ZONES))
def test_window_ids_never_go_back_in_time(now, window, tz):
    assert window_id(window, now, tz) <= window_id(window, now + 1, tz)


def test_google_resets_at_midnight_pacific_not_utc():
    noon_utc = datetime.datetime(2026, 1, 15, 12, tzinfo=datetime.UTC).timestamp()
    start, end = bounds(Window.DAY, noon_utc, "America/Los_Angeles")
    assert datetime.datetime.fromtimestamp(start, datetime.UTC) == datetime.datetime(
        2026, 1, 15, 8, tzinfo=datetime.UTC
    )
    assert end - start == 86400
