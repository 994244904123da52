"""Per-provider state: the default behaviour, the FIFO of scripted faults and the request log."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from llmagg_simulator.catalog import MODELS, SimModel
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
    models: list[SimModel] = field(default_factory=lambda: list(MODELS))  # what its model lists show
    removed: set[str] = field(default_factory=set)  # taken off the list: requests for them get a 404
    model_faults: dict[str, Fault] = field(default_factory=dict)  # what requests for one model get

    def __post_init__(self) -> None:
        self.default = self.startup_default

    @property
    def model_ids(self) -> list[str]:
        return [model.id for model in self.models]

    def listed(self, model_id: str) -> SimModel | None:
        return next((model for model in self.models if model.id == model_id), None)

    def fault_for(self, model: str | None) -> Fault:
        """What a request for `model` gets: a removed model's 404, the model's own behaviour, else next_fault()."""
        if model is not None and model in self.removed:
            return Fault("model_not_found")
        if model is not None and model in self.model_faults:
            return self.model_faults[model]
        return self.next_fault()

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
            "models": self.model_ids,
            "removed": sorted(self.removed),
            "model_behaviours": {model: fault.describe() for model, fault in sorted(self.model_faults.items())},
        }

    def reset(self) -> None:
        self.default = self.startup_default
        self.queue.clear()
        self.requests.clear()
        self.models = list(MODELS)
        self.removed.clear()
        self.model_faults.clear()


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
