"""What every client of another service of the suite shares: its service token as gRPC metadata, a
background task repeated on a period, and whether the peer can be reached (for a readiness check,
said once in the log when it changes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from llmagg.common.grpc_interceptors import SERVICE_TOKEN_METADATA
from llmagg.common.secrets import Secret


def service_metadata(token: Secret | None) -> tuple[tuple[str, str], ...]:
    """The metadata that names the caller to a peer (nothing without a token); never logged."""
    return ((SERVICE_TOKEN_METADATA, token.reveal()),) if token else ()


def peer_token(settings: object, peer: str) -> Secret | None:
    """The service token this service shares with `peer`, from its settings' `<peer>_token` field
    (`<NAME>_<PEER>_TOKEN`); None without one."""
    value = getattr(settings, f"{peer}_token", None)
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return Secret(value) if value else None


class Reachability:
    """Whether a peer answered last time; `healthy` is a readiness probe."""

    def __init__(self, log: logging.Logger, problem: str | None = None) -> None:
        self._log = log
        self.problem = problem

    def failed(self, problem: str, warning: str) -> None:
        """The peer did not answer: `warning` (with %s for the problem) is logged once per outage."""
        if self.problem != problem:
            self._log.warning(warning, problem)
        self.problem = problem

    def answered(self, again: str | None = None) -> bool:
        """The peer answered; `again` is logged when it comes back after an outage. True if it was one."""
        was_down = self.problem is not None
        if was_down and again:
            self._log.info(again)
        self.problem = None
        return was_down

    async def healthy(self) -> bool:
        if self.problem:
            raise ConnectionError(self.problem)
        return True


class Periodic:
    """`work` every `every_s` seconds on the serving loop, surviving any one failed round."""

    def __init__(self, every_s: float, work: Callable[[], Awaitable[None]], log: logging.Logger, what: str) -> None:
        self._every_s, self._work, self._log, self._what = every_s, work, log, what
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self._work()
            except Exception:  # the loop must outlive any one bad round
                self._log.exception("%s failed", self._what)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
