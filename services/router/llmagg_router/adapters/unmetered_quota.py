"""The QuotaLedger when no quota is tracked: every attempt is granted and nothing is charged.

Providers' 429s still steer routing through the HealthStore's cooldowns; the ratelimit service
replaces this ledger with exact windows per account and model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llmagg_router.domain.ports import Headroom, Observed, QuotaKey, Reservation, Usage


class UnmeteredQuota:
    async def reserve(self, key: QuotaKey, estimated_tokens: int, client_id: str = "") -> Reservation:
        return Reservation(key, granted=True)

    async def settle(
        self, reservation: Reservation, usage: Usage | None, outcome: str, observed: Observed | None = None
    ) -> None:
        return None

    async def headroom(self, keys: Sequence[QuotaKey]) -> Mapping[QuotaKey, Headroom]:
        return {}
