"""A bound on what a service holds at once: held for a `with` block, given back after it, refused over it."""

from __future__ import annotations

import pytest

from llmagg.common.budget import Budget
from llmagg.common.errors import ServiceError


def test_a_holding_is_given_back_when_its_block_ends_and_its_end_is_told_what_it_held():
    budget, ended = Budget(100, "bytes"), []
    with budget.hold(30, ended=ended.append) as holding:
        holding.add(20)
        assert budget.used == 50
    assert (budget.used, ended) == (0, [50])


def test_a_block_that_fails_gives_its_holding_back_too():
    budget, ended = Budget(100, "bytes"), []
    with pytest.raises(RuntimeError), budget.hold(40, ended=ended.append):
        raise RuntimeError("the request failed")
    assert (budget.used, ended) == (0, [40])


def test_over_the_limit_beside_others_a_hold_is_refused_and_holds_nothing():
    budget, ended = Budget(100, "bytes"), []
    with budget.hold(80):
        with pytest.raises(ServiceError) as refused, budget.hold(30, ended=ended.append):
            pass
        assert (refused.value.code, refused.value.retry_after_s) == ("server_busy", 1)
        assert budget.used == 80
    assert (budget.used, ended) == (0, [])


def test_alone_a_holding_may_go_over_the_limit():
    budget = Budget(100, "bytes")
    with budget.hold(150) as holding:
        holding.add(50)
        assert budget.used == 200
    assert budget.used == 0
