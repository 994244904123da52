"""Fixtures of the ratelimit unit tests."""

from __future__ import annotations

import pytest

from .helpers import Clock, make_ledger


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(clock):
    return make_ledger(clock)
