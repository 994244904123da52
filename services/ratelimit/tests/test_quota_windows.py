"""The quota windows of some keys, for operators (`POST /v1/admin/quotas`): every limited window once, with
what is used, the limit and when it resets; windows shared by several keys (an account's pool) only once."""

from __future__ import annotations

import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg_ratelimit.servicer import MAX_QUOTA_KEYS, RatelimitServicer

from .helpers import key


async def test_each_limited_window_once_with_its_use_and_reset(ledger):
    for _ in range(3):
        assert (await ledger.reserve(key("pool", "p1", "a:free"), 0)).granted
    assert (await ledger.reserve(key("permodel", "c1", "m2"), 0)).granted
    windows = await ledger.quota_windows(
        [key("pool", "p1", "a:free"), key("pool", "p1", "b:free"), key("permodel", "c1", "m2")]
    )
    assert [(w.key.model, w.name, w.applies_to, w.used, w.limit, w.resets_in_s) for w in windows] == [
        ("a:free", "rpm", "pool/p1", 3, 20, pytest.approx(30)),  # the pool: once, though two keys share it
        ("a:free", "rpd", "pool/p1", 3, 50, pytest.approx(12 * 3600 - 30)),
        ("m2", "rpm", "permodel/c1/m2", 1, 5, pytest.approx(30)),
    ]  # fmt: skip


class Context:
    def invocation_metadata(self):
        return (("x-llmagg-client-id", "k1"), ("x-llmagg-client-scope", "admin"))


async def test_the_servicer_answers_windows_and_refuses_too_many_keys(ledger):
    servicer = RatelimitServicer(ledger)
    assert (await ledger.reserve(key("permodel", "c1", "m2"), 0)).granted
    answer = await servicer.GetQuotaWindows(
        pb.GetQuotaWindowsRequest(keys=[pb.QuotaKey(provider="permodel", account="c1", model="m2")]), Context()
    )
    [window] = answer.windows
    assert (window.name, window.applies_to, window.dimension, window.used, window.limit) == (
        "rpm", "permodel/c1/m2", "requests", 1, 5,
    )  # fmt: skip
    assert (window.resets_at, window.resets_in_s) == ("2026-03-10T12:01:00Z", pytest.approx(30))
    too_many = [pb.QuotaKey(provider="permodel", account="c1", model=f"m{i}") for i in range(MAX_QUOTA_KEYS + 1)]
    with pytest.raises(ServiceError) as refused:
        await servicer.GetQuotaWindows(pb.GetQuotaWindowsRequest(keys=too_many), Context())
    assert refused.value.kind == ErrorKind.INVALID_ARGUMENT
