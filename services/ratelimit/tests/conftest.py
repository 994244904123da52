"""Fixtures of the ratelimit unit tests."""

from __future__ import annotations

import pytest
from hypothesis import settings

from .helpers import Clock, make_ledger

# The same examples on every run and machine (a CI run never differs from the last local one); the
# cases hypothesis once found stay as @example.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(clock):
    return make_ledger(clock)
