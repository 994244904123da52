"""What each simulated provider does next: a FIFO of scripted faults, then its default behaviour."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

BEHAVIOURS = frozenset(
    {
        "ok",
        "429",
        "500",
        "503",
        "401",
        "400",
        "hang",
        "slow_first_byte",
        "cut_stream",
        "malformed_json",
        "context_length",
    }
)
MAX_LOGGED_REQUESTS = 1000


class FaultError(ValueError):
    pass


@dataclass(frozen=True)
class Fault:
    type: str = "ok"
    retry_after: float = 1.0
    delay_s: float = 1.0
    after_chunks: int = 2
    max_hang_s: float = 600.0

    @classmethod
    def parse(cls, raw: Any) -> tuple[Fault, int]:
        """A fault object from the control API and how many requests it applies to."""
        if isinstance(raw, str):
            raw = {"type": raw}
        if not isinstance(raw, dict) or raw.get("type") not in BEHAVIOURS:
            raise FaultError(f"a fault needs `type`, one of {sorted(BEHAVIOURS)}; got {raw!r}")
        count = int(raw.get("count", 1))
        if count < 1:
            raise FaultError("`count` must be at least 1")
        known = {k: raw[k] for k in ("retry_after", "delay_s", "after_chunks", "max_hang_s") if k in raw}
        try:
            fault = cls(type=raw["type"], **known)
            if fault.after_chunks < 0 or fault.delay_s < 0 or fault.retry_after < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise FaultError(f"bad fault parameters in {raw!r}") from None
        return fault, count


@dataclass
class ProviderState:
    default: Fault
    startup_default: Fault
    queue: deque[list[Any]] = field(default_factory=deque)  # [fault, remaining count]
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_LOGGED_REQUESTS))

    def next_fault(self) -> Fault:
        if not self.queue:
            return self.default
        entry = self.queue[0]
        entry[1] -= 1
        if entry[1] <= 0:
            self.queue.popleft()
        return entry[0]

    def reset(self) -> None:
        self.default = self.startup_default
        self.queue.clear()
        self.requests.clear()


class Providers:
    def __init__(self, defaults: dict[str, Fault] | None = None) -> None:
        self._defaults = dict(defaults or {})
        self._states: dict[str, ProviderState] = {}

    def get(self, name: str) -> ProviderState:
        state = self._states.get(name)
        if state is None:
            default = self._defaults.get(name, Fault())
            state = self._states[name] = ProviderState(default=default, startup_default=default)
        return state

    def reset_all(self) -> None:
        for state in self._states.values():
            state.reset()
