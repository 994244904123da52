"""The HealthStore of one router replica, in memory: cooldowns, circuits and latency it has seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Circuit:
    failures: int = 0
    open_until: float = 0.0


class MemoryHealthStore:
    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        open_for_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failure_threshold = failure_threshold
        self._open_for_s = open_for_s
        self._clock = clock
        # (provider, account alias, model or "" for an account-wide quota) -> monotonic deadline
        self._cooldowns: dict[tuple[str, str, str], float] = {}
        self._circuits: dict[tuple[str, str], _Circuit] = {}
        self._latency_ms: dict[tuple[str, str], float] = {}

    # --- rate limits -------------------------------------------------------------------------
    def cool_down(self, provider: str, account: str, model: str, seconds: float) -> None:
        key = (provider, account, model)
        self._cooldowns[key] = max(self._cooldowns.get(key, 0.0), self._clock() + seconds)

    def cooling_for(self, provider: str, account: str, model: str) -> float:
        """Seconds until this account may be used for this model again (0 when it may now)."""
        now = self._clock()
        remaining = 0.0
        for key in ((provider, account, model), (provider, account, "")):
            until = self._cooldowns.get(key)
            if until is not None:
                if until <= now:
                    del self._cooldowns[key]
                else:
                    remaining = max(remaining, until - now)
        return remaining

    # --- outages -------------------------------------------------------------------------------
    def record_failure(self, provider: str, model: str) -> None:
        circuit = self._circuits.setdefault((provider, model), _Circuit())
        circuit.failures += 1
        if circuit.failures >= self._failure_threshold:
            circuit.open_until = self._clock() + self._open_for_s

    def record_success(self, provider: str, model: str, latency_ms: float) -> None:
        self._circuits.pop((provider, model), None)
        key = (provider, model)
        previous = self._latency_ms.get(key)
        self._latency_ms[key] = latency_ms if previous is None else 0.8 * previous + 0.2 * latency_ms

    def circuit_open(self, provider: str, model: str) -> bool:
        circuit = self._circuits.get((provider, model))
        return circuit is not None and circuit.open_until > self._clock()

    def latency_ms(self, provider: str, model: str) -> float | None:
        return self._latency_ms.get((provider, model))
