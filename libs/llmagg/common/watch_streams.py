"""A service's long-lived server streams (a gateway's ECDS stream, a router's catalogue watch) end when
the service stops.

They never end on their own, so a gRPC server stopping would hold them for its whole grace period and
then cancel them. As a companion of the GrpcServer (llmagg.common.server) this ends them as the stop
begins, cleanly: the watcher opens its stream again, to another replica or to this one restarted, and
the stop waits only for the requests that do end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, TypeVar

T = TypeVar("T")


class WatchStreams:
    def __init__(self) -> None:
        self._stopping: asyncio.Event | None = None  # made on the serving loop

    def _event(self) -> asyncio.Event:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    @property
    def stopping(self) -> bool:
        return self._event().is_set()

    async def wait_stopping(self) -> None:
        await self._event().wait()

    async def until_stopped(self, items: AsyncIterable[T]) -> AsyncIterator[T]:
        """`items` as they come, until they end or the service stops. The source is closed whichever way the
        stream ends (its watcher gone too)."""
        stopping = asyncio.ensure_future(self.wait_stopping())
        iterator = aiter(items)
        item: asyncio.Future[T] | None = None
        try:
            while True:
                item = asyncio.ensure_future(anext(iterator))
                await asyncio.wait((item, stopping), return_when=asyncio.FIRST_COMPLETED)
                if stopping.done():
                    return
                try:
                    value = item.result()
                except StopAsyncIteration:
                    return
                item = None
                yield value
        finally:
            stopping.cancel()
            if item is not None and not item.done():
                item.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await item
            closing = getattr(iterator, "aclose", None)
            if closing is not None:
                await closing()

    # --- as a companion of the GrpcServer ---------------------------------------------------------
    async def start(self, server: Any) -> None:
        self._event()

    async def stop(self, grace_s: float) -> None:
        self._event().set()
