"""A deadline for many waits with one timer: a stream waits for each of its upstream's chunks, and
`asyncio.timeout_at` around each wait would make and cancel a timer per chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from llmagg.common.running_loop import current_task, running_loop

T = TypeVar("T")


class Deadline:
    """`next_of(iterator)` waits for the next item as `asyncio.timeout_at(when)` around `anext` would: a wait
    still under way at `when` is cancelled and raises TimeoutError. Only the waits are bounded (not what the
    task does between them). `cancel()` once no wait will follow."""

    def __init__(self, when: float) -> None:
        self._when = when
        self._timer: asyncio.TimerHandle | None = None
        self._expired = False
        self._waiting: asyncio.Task[object] | None = None
        self._fired = False  # the timer cancelled the wait under way

    async def next_of(self, iterator: AsyncIterator[T]) -> T | None:
        """The iterator's next item, or None at its end; TimeoutError past the deadline."""
        if self._expired:  # past it: the wait times out unless the item is there without waiting
            async with asyncio.timeout_at(self._when):
                return await anext(iterator, None)
        task = current_task()
        assert task is not None
        if self._timer is None:
            self._timer = running_loop().call_at(self._when, self._expire)
        self._waiting, cancelling = task, task.cancelling()
        try:
            item: T | None = await iterator.__anext__()
        except StopAsyncIteration:
            item = None
        except BaseException as error:
            if self._fired:
                self._fired = False
                if task.uncancel() <= cancelling and isinstance(error, asyncio.CancelledError):
                    raise TimeoutError from error
            raise
        finally:
            self._waiting = None
        if self._fired:  # cancelled, yet the item came (its wait did not see the cancellation)
            self._fired = False
            task.uncancel()
        return item

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self._expired = True
        if self._waiting is not None:
            self._fired = True
            self._waiting.cancel()


class Timeout:
    """`with timeout_after(s):` as `async with asyncio.timeout(s):` (the block is cancelled at the deadline
    and raises TimeoutError), entered and left without awaiting: every request passes several of these, and
    asyncio's costs two coroutines and two loop look-ups more each time."""

    __slots__ = ("_cancelling", "_delay", "_expiring", "_task", "_timer")

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._timer: asyncio.TimerHandle | None = None
        self._expiring = False

    def __enter__(self) -> Timeout:
        loop = running_loop()
        task = asyncio.current_task(loop)
        assert task is not None
        self._task, self._cancelling = task, task.cancelling()
        self._timer = loop.call_at(loop.time() + self._delay, self._expire)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._expiring:
            self._expiring = False
            if self._task.uncancel() <= self._cancelling and kind is asyncio.CancelledError:
                raise TimeoutError from error

    def _expire(self) -> None:
        self._timer = None
        self._expiring = True
        self._task.cancel()


def timeout_after(seconds: float) -> Timeout:
    return Timeout(seconds)
