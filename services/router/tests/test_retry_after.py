import email.utils
import time

import pytest

from llmagg_router.adapters.retry_after import MAX_WAIT_S, parse_duration, retry_after_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("12ms", 0.012), ("1h2m3.5s", 3723.5), ("2.5", 2.5), ("7m", 420.0)],
)
def test_parses_go_style_reset_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "s1"])
def test_rejects_what_is_not_a_duration(text):
    assert parse_duration(text) is None


def test_retry_after_ms_wins_over_retry_after():
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5


def test_retry_after_accepts_an_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds({"retry-after": when}) <= 31


def test_uses_the_reset_of_the_exhausted_dimension():
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-remaining-tokens": "5000",
        "x-ratelimit-reset-tokens": "1s",
    }
    assert retry_after_seconds(headers) == 360.0


def test_reads_the_wait_from_the_error_message():
    assert retry_after_seconds({}, "Rate limit reached. Please try again in 18.6s.") == pytest.approx(18.6)
    assert retry_after_seconds({}, "Quota exceeded. Please retry in 23.4s.") == pytest.approx(23.4)
    assert retry_after_seconds({}, "try again in 450ms") == pytest.approx(0.45)


def test_no_hint_means_none():
    assert retry_after_seconds({}, "slow down") is None


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "infinity"])
def test_a_wait_that_is_not_a_number_is_no_hint(value):
    assert retry_after_seconds({"retry-after": value}) is None
    assert retry_after_seconds({"retry-after-ms": value}) is None
    assert retry_after_seconds({"x-ratelimit-reset-requests": value, "x-ratelimit-remaining-requests": "0"}) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "1e300"},
        {"retry-after-ms": "1e300"},
        {"retry-after": "Fri, 01 Jan 3026 00:00:00 GMT"},
        {"x-ratelimit-reset-tokens": "99999999h", "x-ratelimit-remaining-tokens": "0"},
    ],
)
def test_no_wait_is_believed_beyond_a_day(headers):
    assert retry_after_seconds(headers) == MAX_WAIT_S == 86400


def test_a_negative_wait_means_now():
    assert retry_after_seconds({"retry-after": "-5"}) == 0.0
