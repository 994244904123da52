"""running_loop() and current_task() answer as asyncio's do, from loop to loop, without the kernel's help."""

from __future__ import annotations

import asyncio
import os

import pytest

from llmagg.common import running_loop as module
from llmagg.common.running_loop import current_task, running_loop


def test_outside_a_loop_there_is_none():
    with pytest.raises(RuntimeError):
        running_loop()


def test_each_loop_in_turn_is_the_running_one_and_its_task_the_current_one():
    async def seen() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop, bool]:
        return running_loop(), asyncio.get_running_loop(), current_task() is asyncio.current_task()

    for _ in range(3):  # a loop that ended is not taken for the next one
        mine, asyncios, same_task = asyncio.run(seen())
        assert mine is asyncios
        assert same_task
    with pytest.raises(RuntimeError):
        running_loop()


async def test_the_running_loop_is_looked_up_once_while_it_runs(monkeypatch):
    module._seen.__dict__.clear()
    lookups: list[int] = []
    real = asyncio.get_running_loop
    monkeypatch.setattr(asyncio, "get_running_loop", lambda: lookups.append(1) or real())
    loops = {running_loop() for _ in range(5)} | {current_task().get_loop() for _ in range(5)}
    assert loops == {real()}
    assert lookups == [1]  # each lookup costs a system call on Python 3.11 (the process id, for forks)


def test_a_forked_child_forgets_the_parents_loop():
    async def fork() -> int:
        running_loop()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if getattr(module._seen, "loop", None) is None else 1)
        return pid

    assert os.waitstatus_to_exitcode(os.waitpid(asyncio.run(fork()), 0)[1]) == 0
