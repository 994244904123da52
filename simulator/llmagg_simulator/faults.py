"""Fault objects: what a simulated provider does with a request, parsed from the control API or the CLI."""

from __future__ import annotations

import math
from dataclasses import dataclass
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
        "stream_error",
        "malformed_json",
        "context_length",
        "410",  # the model is gone: HTTP 410 in the dialect's error shape
        "model_not_found",  # the dialect's 404 for a model it does not serve
    }
)
# Parameters any fault may carry; each only matters to the behaviour named in its comment.
PARAMETERS = {
    "retry_after": float,  # 429: seconds in retry-after, x-ratelimit-reset-requests and the message
    "delay_s": float,  # slow_first_byte: seconds before the response starts
    "after_chunks": int,  # cut_stream, stream_error: content events sent after the opening ones before it breaks
    "max_hang_s": float,  # hang: the connection is closed unanswered after this long
}


class FaultError(ValueError):
    """A fault object the simulator cannot follow; the control API answers it with a 400."""


@dataclass(frozen=True)
class Fault:
    type: str = "ok"
    retry_after: float = 1.0
    delay_s: float = 1.0
    after_chunks: int = 2
    max_hang_s: float = 600.0

    def describe(self) -> dict[str, Any]:
        return {"type": self.type, **{name: getattr(self, name) for name in PARAMETERS}}


def _number(key: str, value: Any) -> float | int:
    kind = PARAMETERS[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise FaultError(f"`{key}` must be a non-negative number; got {value!r}")
    if kind is int:
        if value != int(value):
            raise FaultError(f"`{key}` must be a whole number; got {value!r}")
        return int(value)
    return float(value)


def parse_fault(raw: Any) -> tuple[Fault, int]:
    """A fault from `"500"` or `{"type": "429", "retry_after": 2, "count": 3}`, and how many requests it covers."""
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict) or raw.get("type") not in BEHAVIOURS:
        raise FaultError(f"a fault needs `type`, one of {sorted(BEHAVIOURS)}; got {raw!r}")
    unknown = set(raw) - {"type", "count", *PARAMETERS}
    if unknown:
        raise FaultError(f"unknown fault keys {sorted(unknown)}; known: count, {', '.join(PARAMETERS)}")
    count = raw.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise FaultError(f"`count` must be a whole number of at least 1; got {count!r}")
    parameters = {key: _number(key, value) for key, value in raw.items() if key in PARAMETERS}
    return Fault(type=raw["type"], **parameters), count


def parse_behaviour_option(text: str) -> tuple[str, Fault]:
    """`NAME=TYPE[,key=value...]` from `--provider`, e.g. `sim-slow=slow_first_byte,delay_s=0.2`."""
    name, separator, spec = text.partition("=")
    if not name or not separator or not spec:
        raise FaultError(f"expected NAME=BEHAVIOUR, got {text!r}")
    fault_type, *assignments = spec.split(",")
    raw: dict[str, Any] = {"type": fault_type}
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        if key not in PARAMETERS:
            raise FaultError(f"unknown parameter {key!r} in {text!r}; known: {', '.join(PARAMETERS)}")
        try:
            raw[key] = float(value)
        except ValueError:
            raise FaultError(f"expected key=number after the behaviour, got {assignment!r}") from None
    fault, _ = parse_fault(raw)
    return name, fault
