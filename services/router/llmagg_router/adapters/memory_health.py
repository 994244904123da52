"""The HealthStore of one router replica, in memory: cooldowns, circuits and latency it has seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from llmagg_router.domain.ports import Circuit, CircuitState, Cooldown, HealthSnapshot

MAX_ENTRIES = 100_000  # keys can come from clients (pass-through model ids): stay bounded


@dataclass
class _Circuit:
    failures: int = 0
    open_until: float = 0.0  # 0 while closed
    probe_until: float = 0.0  # a probe is out until then


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
        self._circuits: dict[str, _Circuit] = {}
        self._latency_ms: dict[tuple[str, str], float] = {}

    # --- rate limits -------------------------------------------------------------------------
    def cool_down(self, provider: str, account: str, model: str, seconds: float) -> None:
        key = (provider, account, model)
        if key not in self._cooldowns and len(self._cooldowns) >= MAX_ENTRIES:
            self._forget_expired_cooldowns()
        self._cooldowns[key] = max(self._cooldowns.get(key, 0.0), self._clock() + seconds)

    def cooling_for(self, provider: str, account: str, model: str) -> float:
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

    def _forget_expired_cooldowns(self) -> None:
        now = self._clock()
        for key in [key for key, until in self._cooldowns.items() if until <= now]:
            del self._cooldowns[key]
        while len(self._cooldowns) >= MAX_ENTRIES:  # all live: drop the soonest to end
            del self._cooldowns[min(self._cooldowns, key=self._cooldowns.__getitem__)]

    # --- circuits ------------------------------------------------------------------------------
    def record_failure(self, circuit: str) -> None:
        now = self._clock()
        state = self._circuits.get(circuit)
        if state is None:
            if len(self._circuits) >= MAX_ENTRIES:
                self._circuits.clear()  # forgetting failures only makes the router retry sooner
            state = self._circuits[circuit] = _Circuit()
        state.failures += 1
        if state.open_until or state.failures >= self._failure_threshold:
            # Opens at the threshold; a failed probe (or any failure once open) opens it again.
            state.open_until = now + self._open_for_s
            state.probe_until = 0.0

    def record_success(self, circuit: str) -> None:
        self._circuits.pop(circuit, None)

    def circuit_state(self, circuit: str) -> CircuitState:
        state = self._circuits.get(circuit)
        if state is None or not state.open_until:
            return CircuitState.CLOSED
        now = self._clock()
        if state.open_until > now or state.probe_until > now:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def open_for(self, circuit: str) -> float:
        """Seconds left of the circuit's open window (0 when it is closed or its window has passed)."""
        state = self._circuits.get(circuit)
        return max(state.open_until - self._clock(), 0.0) if state is not None and state.open_until else 0.0

    def open_circuits(self) -> dict[str, float]:
        """Every circuit in its open window: name -> seconds left of it."""
        return {name: left for name in self._circuits if (left := self.open_for(name)) > 0}

    def open_circuit(self, circuit: str, seconds: float) -> None:
        """Open the circuit for `seconds` (at least): what another replica saw fail."""
        state = self._circuits.get(circuit)
        if state is None:
            if len(self._circuits) >= MAX_ENTRIES:
                self._circuits.clear()
            state = self._circuits[circuit] = _Circuit()
        state.failures = max(state.failures, self._failure_threshold)
        state.open_until = max(state.open_until, self._clock() + seconds)

    def claim_probe(self, circuit: str) -> bool:
        if self.circuit_state(circuit) is not CircuitState.HALF_OPEN:
            return False
        # A probe that never reports back (its caller went away) frees the circuit after a window.
        self._circuits[circuit].probe_until = self._clock() + self._open_for_s
        return True

    # --- latency -------------------------------------------------------------------------------
    def record_latency(self, provider: str, model: str, latency_ms: float) -> None:
        key = (provider, model)
        previous = self._latency_ms.get(key)
        if previous is None and len(self._latency_ms) >= MAX_ENTRIES:
            self._latency_ms.clear()
        self._latency_ms[key] = latency_ms if previous is None else 0.8 * previous + 0.2 * latency_ms

    def latency_ms(self, provider: str, model: str) -> float | None:
        return self._latency_ms.get((provider, model))

    # --- the view -------------------------------------------------------------------------------
    def snapshot(self) -> HealthSnapshot:
        now = self._clock()
        cooldowns = tuple(
            Cooldown(provider, account, model, until - now)
            for (provider, account, model), until in self._cooldowns.items()
            if until > now
        )
        circuits = tuple(
            Circuit(name, self.circuit_state(name), state.failures, max(state.open_until, state.probe_until, now) - now)
            for name, state in self._circuits.items()
        )
        return HealthSnapshot(cooldowns, circuits, dict(self._latency_ms))
