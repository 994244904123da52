"""Fixtures of the chaos suite: hostile upstreams, and stacks configured per scenario."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .hostile import HostileUpstream


@pytest.fixture(scope="session")
def hostile() -> Iterator[HostileUpstream]:
    upstream = HostileUpstream()
    try:
        yield upstream
    finally:
        upstream.stop()
