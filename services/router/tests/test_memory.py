"""Freed memory is given back after large request bodies only (issue 16, item 11)."""

import asyncio

from llmagg_router.memory import LARGE_REQUEST_BYTES, MemoryReleaser, keep_allocator_thresholds


async def test_a_burst_of_large_requests_trims_soon_and_once_more_when_quiet_small_ones_never():
    calls: list[int] = []
    quiet = asyncio.Event()

    def trim(pad: int) -> int:
        calls.append(pad)
        if len(calls) == 2:
            quiet.set()
        return 1

    releaser = MemoryReleaser(trim=trim, soon_s=0.01, quiet_s=0.05)
    for _ in range(100):
        releaser.request_ended(LARGE_REQUEST_BYTES - 1)
    assert not releaser.scheduled
    for _ in range(5):
        releaser.request_ended(30 * LARGE_REQUEST_BYTES)
    async with asyncio.timeout(5):
        await quiet.wait()
    assert calls == [0, 0]  # soon after the first (whatever else ended meanwhile), and once they stopped
    assert not releaser.scheduled


def test_the_allocator_thresholds_are_kept_on_glibc():
    assert keep_allocator_thresholds()
