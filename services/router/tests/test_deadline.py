"""The hot path's timeouts behave as asyncio's: the block (or the wait) past its deadline raises TimeoutError,
a cancellation from elsewhere stays a cancellation, and nothing is left behind once the block is left."""

import asyncio

import pytest

from llmagg_router.domain.deadline import Deadline, timeout_after


async def test_a_block_past_its_delay_raises_timeout_error_and_leaves_the_task_uncancelled():
    with pytest.raises(TimeoutError):
        with timeout_after(0.01):
            await asyncio.sleep(10)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_block_within_its_delay_leaves_no_timer_behind():
    with timeout_after(0.02):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # past the delay: nothing cancels this task


async def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    started = asyncio.Event()

    async def blocked() -> None:
        with timeout_after(10):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(blocked())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _items(*items):
    for item in items:
        if isinstance(item, float):
            await asyncio.sleep(item)
        else:
            yield item


async def test_a_deadline_hands_out_the_items_then_none_at_the_end():
    loop = asyncio.get_running_loop()
    deadline, items = Deadline(loop.time() + 10), _items("a", 0.001, "b")
    assert [await deadline.next_of(items), await deadline.next_of(items), await deadline.next_of(items)] == [
        "a",
        "b",
        None,
    ]
    deadline.cancel()


async def test_a_wait_under_way_at_the_deadline_raises_timeout_error():
    loop = asyncio.get_running_loop()
    deadline, items = Deadline(loop.time() + 0.02), _items("a", 10.0, "b")
    assert await deadline.next_of(items) == "a"
    with pytest.raises(TimeoutError):
        await deadline.next_of(items)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_past_the_deadline_an_item_already_there_still_comes_and_a_wait_times_out():
    loop = asyncio.get_running_loop()
    deadline, items = Deadline(loop.time() + 0.01), _items("a", "b", 10.0, "c")
    assert await deadline.next_of(items) == "a"
    await asyncio.sleep(0.03)  # the taker is slow: past the deadline, but not waiting for the items
    assert await deadline.next_of(items) == "b"
    with pytest.raises(TimeoutError):
        await deadline.next_of(items)
