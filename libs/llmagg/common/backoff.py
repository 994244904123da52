"""The one exponential backoff of the suite: the wait before the next try after failures in a row.

`delay(n)` after n failures is `first_s * 2**(n-1)`, never above `max_s` (nor a `ceiling` the caller
passes), times a factor drawn from `jitter` so that many waiters do not retry in step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    first_s: float
    max_s: float
    jitter: tuple[float, float] = (1.0, 1.0)  # the factor's range; (1, 1): none

    def delay(self, failures: int, ceiling: float | None = None) -> float:
        limit = self.max_s if ceiling is None else min(self.max_s, ceiling)
        low, high = self.jitter
        factor = 1.0 if low == high == 1.0 else random.uniform(low, high)
        return min(limit, self.first_s * 2 ** max(failures - 1, 0)) * factor
