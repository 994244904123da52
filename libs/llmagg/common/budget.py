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
    def hold(self, amount: int) -> Iterator[None]:
        """Hold `amount` for the duration; refuse with 503 + Retry-After when it would go over the limit.

        A single holder may exceed the limit when nothing else is held, so one large request is never
        refused by an idle server (other bounds, like the message size, cap it).
        """
        if self.used and self.used + amount > self.limit:
            raise ServiceError(
                ErrorKind.UNAVAILABLE,
                f"The server is at its limit of {self._what}; retry shortly.",
                code="server_busy",
                retry_after_s=1,
                retry_elsewhere=True,
            )
        self.used += amount
        try:
            yield
        finally:
            self.used -= amount
