"""`llmagg usage`: relative times, dimensions and the table."""

import datetime

import pytest

from llmagg_cli.errors import CliError
from llmagg_cli.output import table
from llmagg_cli.usage import _dimensions, rows, since

NOW = datetime.datetime(2026, 5, 20, 12, 0, tzinfo=datetime.UTC)


def test_since_takes_hours_days_weeks_or_a_time_as_given():
    assert since("24h", NOW) == "2026-05-19T12:00:00Z"
    assert since("2w", NOW) == "2026-05-06T12:00:00Z"
    assert since("2026-05-01", NOW) == "2026-05-01"


def test_dimensions_are_checked_and_client_means_client_id():
    assert _dimensions("provider, client") == ["provider", "client_id"]
    with pytest.raises(CliError):
        _dimensions("provider,colour")


def test_the_table_has_a_row_per_bucket_and_dimension_and_a_total():
    data = [
        {"bucket_start": "2026-05-19T00:00:00Z", "provider": "groq", "requests": 3, "attempts": 5,
         "prompt_tokens": 1200.0, "completion_tokens": 300.0, "latency_ms_avg": 812.4, "cost_avoided_usd": 0.000945},
        {"bucket_start": "2026-05-20T00:00:00Z", "provider": "openrouter", "requests": 1, "attempts": 1,
         "prompt_tokens": 10.0, "completion_tokens": 5.0, "latency_ms_avg": 100.0, "cost_avoided_usd": 0.0},
    ]  # fmt: skip
    cells, headers = rows(data, "day", ["provider"])
    text = table(cells, headers)
    assert text.splitlines()[0].split() == [
        "BUCKET",
        "PROVIDER",
        "REQUESTS",
        "ATTEMPTS",
        "PROMPT",
        "COMPLETION",
        "TOTAL",
        "AVG",
        "MS",
        "SAVED",
        "USD",
    ]
    assert cells[0] == ["2026-05-19", "groq", "3", "5", "1,200", "300", "1,500", "812", "0.0009"]
    assert cells[1] == ["2026-05-20", "openrouter", "1", "1", "10", "5", "15", "100", "0.0000"]
    assert cells[-1] == ["TOTAL", "", "4", "6", "1,210", "305", "1,515", "", "0.0009"]
