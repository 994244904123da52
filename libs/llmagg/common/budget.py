"""A bound on what a service holds at once (request bytes in flight, say): over it, a clear 503."""

from __future__ import annotations

from collections.abc import Callable

from llmagg.common.errors import ErrorKind, ServiceError


class Budget:
    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.used = 0
        self._what = what

    def hold(self, amount: int = 0, ended: Callable[[int], object] | None = None) -> Holding:
        """A holding of `amount` for the duration of a `with` block (taken on entering it); it may grow
        (`add`) as more arrives. `ended`: told what was held once it is given back."""
        return Holding(self, amount, ended)

    def _refuse(self) -> ServiceError:
        return ServiceError(
            ErrorKind.UNAVAILABLE,
            f"The server is at its limit of {self._what}; retry shortly.",
            code="server_busy",
            retry_after_s=1,
            retry_elsewhere=True,
        )


class Holding:
    """What one `with` block holds of a budget, given back when it ends."""

    def __init__(self, budget: Budget, amount: int = 0, ended: Callable[[int], object] | None = None) -> None:
        self._budget, self._first, self._ended = budget, amount, ended
        self.amount = 0

    def __enter__(self) -> Holding:
        self.add(self._first)
        return self

    def __exit__(self, *exc_info: object) -> None:
        held, self.amount = self.amount, 0
        self._budget.used -= held
        if self._ended is not None:
            self._ended(held)

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
