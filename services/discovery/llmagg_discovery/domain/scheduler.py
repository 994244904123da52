"""Each source runs on its own schedule, under its own timeout, and fails alone.

A run that raises or overruns its timeout is recorded (scrubbed of anything key-shaped) and retried
after an exponential backoff; nothing of it reaches the catalogue, and no other source waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from llmagg.common.backoff import Backoff
from llmagg.common.logging import log_fields, scrub
from llmagg_discovery.domain.ports import Source, SourceContext
from llmagg_discovery.domain.records import Change, SourceReport

log = logging.getLogger(__name__)
_ERROR_LIMIT = 500


@dataclass
class SourceStatus:
    name: str
    enabled: bool
    interval_s: float
    last_attempt_at: float = 0.0
    last_success_at: float = 0.0
    last_error: str = ""
    consecutive_failures: int = 0
    next_run_at: float = 0.0


def source_backoff(base_s: float = 5.0, max_s: float = 3600.0) -> Backoff:
    """A failed source's retry: from `base_s`, doubling, up to `max_s` and never past its own interval."""
    return Backoff(base_s, max_s, jitter=(0.8, 1.0))


class SourceRunner:
    def __init__(
        self,
        source: Source,
        apply: Callable[[SourceReport], Awaitable[list[Change]]],
        context: Callable[[], SourceContext],
        backoff: Backoff,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self._apply = apply
        self._context = context
        self._backoff = backoff
        self._clock = clock
        self.status = SourceStatus(source.name, True, source.interval_s)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    async def run_once(self) -> list[Change]:
        """One run now (after any run in progress); the changes it made ([] when it failed)."""
        async with self._lock:
            status = self.status
            status.last_attempt_at = self._clock()
            try:
                async with asyncio.timeout(self.source.timeout_s):
                    report = await self.source.run(self._context())
            except Exception as problem:  # any failure of a source is its own: recorded, retried, isolated
                status.consecutive_failures += 1
                reason = "timed out" if isinstance(problem, TimeoutError) else f"{type(problem).__name__}: {problem}"
                status.last_error = scrub(reason)[:_ERROR_LIMIT]
                interval = self.source.interval_s
                delay = self._backoff.delay(status.consecutive_failures, interval if interval > 0 else None)
                status.next_run_at = self._clock() + delay
                log.warning(
                    "source %s failed: %s (retry in %.0fs)",
                    self.source.name,
                    status.last_error,
                    delay,
                    extra=log_fields(source=self.source.name, failures=status.consecutive_failures),
                )
                return []
            changes = await self._apply(report)
            status.consecutive_failures = 0
            status.last_success_at = self._clock()
            status.last_error = "; ".join(report.problems)[:_ERROR_LIMIT]
            interval = self.source.interval_s
            status.next_run_at = self._clock() + interval if interval > 0 else 0.0
            return changes

    def wake(self) -> None:
        self._wake.set()

    async def loop(self, first_delay_s: float = 0.0) -> None:
        """Run on schedule until cancelled: at start (after `first_delay_s`), then every interval or backoff."""
        self.status.next_run_at = self._clock() + first_delay_s
        while True:
            wait = self.status.next_run_at - self._clock()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                self._wake.clear()
            if self.source.interval_s <= 0 and self.status.last_success_at:
                return  # a run-once source that has run
            await self.run_once()
