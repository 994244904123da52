"""Per-provider state: the default behaviour, the FIFO of scripted faults and the request log."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from llmagg_simulator.faults import Fault

MAX_LOGGED_REQUESTS = 1000


@dataclass
class ScriptedFault:
    fault: Fault
    remaining: int


@dataclass
class ProviderState:
    startup_default: Fault
    default: Fault = field(init=False)
    queue: deque[ScriptedFault] = field(default_factory=deque)
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_LOGGED_REQUESTS))
    in_flight: int = 0  # requests whose handler is still running (a hang holds one until the client leaves)

    def __post_init__(self) -> None:
        self.default = self.startup_default

    def next_fault(self) -> Fault:
        """The scripted fault at the head of the queue (using up one of its count), else the default."""
        if not self.queue:
            return self.default
        head = self.queue[0]
        head.remaining -= 1
        if head.remaining <= 0:
            self.queue.popleft()
        return head.fault

    def describe(self) -> dict[str, Any]:
        return {
            "default": self.default.describe(),
            "queue": [{**scripted.fault.describe(), "count": scripted.remaining} for scripted in self.queue],
            "in_flight": self.in_flight,
            "logged_requests": len(self.requests),
        }

    def reset(self) -> None:
        self.default = self.startup_default
        self.queue.clear()
        self.requests.clear()


class Providers:
    """Every provider name ever addressed; a name not seen before starts with its startup default."""

    def __init__(self, startup_defaults: dict[str, Fault] | None = None) -> None:
        self._startup_defaults = dict(startup_defaults or {})
        self._states: dict[str, ProviderState] = {}
        self._arrivals = itertools.count(1)

    def next_seq(self) -> int:
        """The arrival number of a request, across every provider: the order requests came in."""
        return next(self._arrivals)

    def get(self, name: str) -> ProviderState:
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = ProviderState(self._startup_defaults.get(name, Fault()))
        return state

    def reset_all(self) -> None:
        for state in self._states.values():
            state.reset()


PROVIDERS = web.AppKey("providers", Providers)
CHUNK_DELAY_S = web.AppKey("chunk_delay_s", float)
