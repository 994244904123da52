"""What the ratelimit unit tests share: a small limit book, a settable clock, a ledger on memory stores."""

from __future__ import annotations

import datetime

from llmagg_ratelimit.adapters.memory_counters import MemoryCounters
from llmagg_ratelimit.adapters.sql_usage import sqlite_usage
from llmagg_ratelimit.domain.clients import ClientLimits, ClientPolicy
from llmagg_ratelimit.domain.ledger import Ledger
from llmagg_ratelimit.domain.limits import LimitBook, ProviderQuota, QuotaKey

# 2026-03-10 12:00:30 UTC: mid-minute, mid-day.
NOON = datetime.datetime(2026, 3, 10, 12, 0, 30, tzinfo=datetime.UTC).timestamp()

PROVIDERS = {
    # OpenRouter-like: every model of an account shares 20/min and 50/day.
    "pool": ProviderQuota("pool", shared=True, limits={"rpm": 20, "rpd": 50}),
    # Cerebras-like: per model 30 RPM + 60k TPM + 14,400 RPD + 1M TPD.
    "permodel": ProviderQuota(
        "permodel",
        model_limits={"m1": {"rpm": 30, "tpm": 60000, "rpd": 14400, "tpd": 1000000}, "m2": {"rpm": 5}},
        prices={"m1": (0.5, 1.5)},
    ),
    "pacific": ProviderQuota("pacific", reset_timezone="America/Los_Angeles", limits={"rpd": 3}),
}


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_ledger(clock: Clock, clients: ClientLimits | None = None, counters=None) -> Ledger:
    usage = sqlite_usage(":memory:")
    usage.open()
    return Ledger(
        LimitBook(PROVIDERS),
        MemoryCounters() if counters is None else counters,
        usage,
        ClientPolicy(clients or ClientLimits()),
        reservation_ttl_s=600,
        clock=clock,
    )


def key(provider: str = "pool", account: str = "acct-1", model: str = "a:free") -> QuotaKey:
    return QuotaKey(provider, account, model)
