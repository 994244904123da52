"""Hedging: when the attempt under way has brought no content within what its provider's model usually
takes (the 95th percentile of its recent times to first content; a set delay until enough are known),
the next candidate starts beside it. The first to bring content wins; the other is abandoned (its quota
settled as such). Opt-in: per request (`x-llmagg-hedge`), and by setting for `model_quality: fastest`.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from llmagg.common.running_loop import running_loop
from llmagg_router.domain.upstream import UpstreamError

T = TypeVar("T")


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


MIN_HEDGE_DELAY_S = 0.01  # however quick a model usually is, its attempt gets this long alone


class HedgeLost(Exception):
    """Raised in an attempt whose content came after another attempt of its request already had some."""


class Race:
    """The attempts of one hedged request: the first to bring content claims the request."""

    def __init__(self) -> None:
        self.winner: object | None = None
        self.claimed = asyncio.Event()

    def claim(self, attempt: object) -> None:
        if self.winner is None:
            self.winner = attempt
            self.claimed.set()
        elif self.winner is not attempt:
            raise HedgeLost

    def reopen(self) -> None:
        """The winner failed after its first content: the next attempt may claim the request."""
        self.winner = None
        self.claimed = asyncio.Event()


async def hedged(
    launch: Callable[[Race], Awaitable[tuple[Any, Awaitable[T]] | None]],
    delay_of: Callable[[Any], float],
    exhausted: Callable[[], BaseException],
    keep: Callable[[asyncio.Task[Any]], None],
) -> T:
    """Run the request's attempts as `launch` gives them (None: no candidate left), the next one beside
    the attempt under way when that one has brought no content within `delay_of(attempt)` seconds (or at
    once when it fails). The first with content wins; the others are cancelled and handed to `keep` to
    finish (settle, close) without the request waiting. An error that is not an upstream failure (a
    client error) is raised only when no other attempt still running answers."""
    loop = running_loop()
    race = Race()
    running: dict[asyncio.Task[T], tuple[Any, float]] = {}
    held: BaseException | None = None

    async def start_next() -> bool:
        launched = await launch(race)
        if launched is None:
            return False
        attempt, work = launched
        running[asyncio.ensure_future(work)] = (attempt, loop.time())
        return True

    def drop(task: asyncio.Task[T]) -> None:
        del running[task]
        task.cancel()
        keep(task)

    more = await start_next()
    claimed: asyncio.Future[Any] | None = None
    try:
        while running:
            if race.winner is not None:
                for task in [task for task, (attempt, _) in running.items() if attempt is not race.winner]:
                    drop(task)
            waiting: list[asyncio.Future[Any]] = list(running)
            delay = None
            if race.winner is None:  # until one brings content: hear of it, and hedge the leader when it is slow
                if claimed is None or claimed.done():
                    claimed = asyncio.ensure_future(race.claimed.wait())
                waiting.append(claimed)
                leader, started = next(iter(running.values()))
                if more and held is None and len(running) < 2:
                    delay = max(0.0, started + delay_of(leader) - loop.time())
            done, _ = await asyncio.wait(waiting, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for task in [task for task in done if task in running]:
                attempt, _ = running.pop(task)
                error = None if task.cancelled() else task.exception()
                if not task.cancelled() and error is None:
                    return task.result()
                if race.winner is attempt:
                    race.reopen()
                if error is not None and not isinstance(error, HedgeLost | UpstreamError):
                    held = held or error
                    more = False
            if not running and held is None and more:
                more = await start_next()  # the attempt under way failed: the next one, at once
            elif running and not done and delay is not None:
                more = await start_next()  # the attempt under way is slow to bring content
        if held is not None:
            raise held
        raise exhausted()
    finally:
        if claimed is not None:
            claimed.cancel()
        for task in list(running):
            drop(task)
