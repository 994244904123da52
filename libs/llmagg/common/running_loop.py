"""`running_loop()` and `current_task()` as asyncio's, without a system call each.

On Python 3.11 `asyncio.get_running_loop()` (and `current_task()` without a loop, which calls it) asks the
kernel for the process id every time, to notice a fork; a request passes such calls a dozen times. Here the
loop is remembered per thread and used while it runs: only one loop runs in a thread, so a remembered loop
still running is the one running now. A child forked from this thread forgets it.
"""

from __future__ import annotations

import asyncio
import os
import threading

_seen = threading.local()


def running_loop() -> asyncio.AbstractEventLoop:
    """The running loop (RuntimeError when none is), as `asyncio.get_running_loop()`."""
    loop: asyncio.AbstractEventLoop | None = getattr(_seen, "loop", None)
    if loop is None or not loop.is_running():
        loop = _seen.loop = asyncio.get_running_loop()
    return loop


def current_task() -> asyncio.Task[object] | None:
    """The task running now, as `asyncio.current_task()`."""
    return asyncio.current_task(running_loop())


def _forget() -> None:
    _seen.__dict__.clear()


os.register_at_fork(after_in_child=_forget)
