"""A bound on what a service holds at once (request bytes in flight, say): over it, a clear 503."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from llmagg.common.errors import ErrorKind, ServiceError


class Budget:
    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.used = 0
        self._what = what

    @contextlib.contextmanager
    def hold(self, amount: int = 0) -> Iterator[Holding]:
        """A holding for the duration of the block; it may grow (`add`) as more arrives."""
        holding = Holding(self)
        try:
            holding.add(amount)
            yield holding
        finally:
            self.used -= holding.amount

    def _refuse(self) -> ServiceError:
        return ServiceError(
            ErrorKind.UNAVAILABLE,
            f"The server is at its limit of {self._what}; retry shortly.",
            code="server_busy",
            retry_after_s=1,
            retry_elsewhere=True,
        )


class Holding:
    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self.amount = 0

    def add(self, amount: int) -> None:
        """Hold `amount` more; refuse with 503 + Retry-After when the budget would go over its limit.

        A holding may exceed the limit alone when nothing else is held, so one large request is never
        refused by an idle server (other bounds, like the body size limit, cap it).
        """
        budget = self._budget
        others = budget.used - self.amount
        if others and budget.used + amount > budget.limit:
            raise budget._refuse()
        budget.used += amount
        self.amount += amount
