from __future__ import annotations

import pytest

from llmagg.common.backoff import Backoff


def test_doubles_from_the_first_delay_up_to_the_cap():
    backoff = Backoff(1.0, 30.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.delay(0) == 1.0


def test_a_ceiling_lowers_the_cap():
    assert Backoff(5.0, 3600.0).delay(10, ceiling=60.0) == 60.0


@pytest.mark.parametrize("failures", [1, 3, 12])
def test_jitter_stays_in_its_range(failures):
    plain = Backoff(0.5, 30.0).delay(failures)
    for _ in range(50):
        assert 0.8 * plain <= Backoff(0.5, 30.0, jitter=(0.8, 1.2)).delay(failures) <= 1.2 * plain
