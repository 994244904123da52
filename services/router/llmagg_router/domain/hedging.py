"""Hedging: when the attempt under way has brought no content within what its provider's model usually
takes (the 95th percentile of its recent times to first content; a set delay until enough are known),
the next candidate starts beside it. The first to bring content wins; the other is abandoned (its quota
settled as such). Opt-in: per request (`x-llmagg-hedge`), and by setting for `model_quality: fastest`.
"""

from __future__ import annotations

import enum
from collections import deque


class HedgeMode(enum.StrEnum):
    OFF = "off"
    FASTEST = "fastest"  # requests asking for `model_quality: fastest` (and any that ask for it)
    ALWAYS = "always"


def hedging(mode: HedgeMode, quality: str | None, asked: bool | None) -> bool:
    """Whether a request hedges: its own choice when it made one, else the setting's."""
    if asked is not None:
        return asked
    return mode is HedgeMode.ALWAYS or (mode is HedgeMode.FASTEST and quality == "fastest")


class FirstContentTimes:
    """The last `samples` times to first content of each provider's model, and their 95th percentile."""

    def __init__(self, samples: int = 50, min_samples: int = 10, max_keys: int = 4096) -> None:
        self._samples = samples
        self._min_samples = min_samples
        self._max_keys = max_keys
        self._times: dict[tuple[str, str], deque[float]] = {}

    def observe(self, provider: str, model: str, ms: float) -> None:
        times = self._times.get((provider, model))
        if times is None:
            if len(self._times) >= self._max_keys:
                self._times.clear()  # model ids come from clients too: stay bounded
            times = self._times[(provider, model)] = deque(maxlen=self._samples)
        times.append(ms)

    def p95_ms(self, provider: str, model: str) -> float | None:
        """None until `min_samples` are known."""
        times = self._times.get((provider, model))
        if times is None or len(times) < self._min_samples:
            return None
        ordered = sorted(times)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
