"""What the credentials unit tests share: a small registry, fake clocks and obviously fake keys."""

from __future__ import annotations

import datetime

from llmagg.registry import merge_providers

PROVIDERS = merge_providers(
    [
        {"id": "groq", "name": "Groq", "base_url": "https://groq.example/v1", "models": [{"id": "llama"}]},
        {
            "id": "cloudflare",
            "name": "Cloudflare",
            "base_url": "https://cf.example/{account_id}/v1",
            "models": [{"id": "llama"}],
        },
        {"id": "local", "name": "Local", "base_url": "http://127.0.0.1:9/v1", "auth": "none", "models": [{"id": "m"}]},
    ]
)
KEY_A = "gsk-test-FAKE-aaaa"
KEY_B = "gsk-test-FAKE-bbbb"


class Clocks:
    """A wall clock (UTC datetimes) and a monotonic clock that tests move by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def wall(self) -> datetime.datetime:
        return datetime.datetime(2026, 11, 26, tzinfo=datetime.UTC) + datetime.timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
