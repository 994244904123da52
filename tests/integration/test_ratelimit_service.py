"""The ratelimit process over gRPC in a stack: who may call what, bad input, per-account limit
overrides read from the credentials service, and the router's leases."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import pytest

from llmagg.common.secrets import Secret
from llmagg.credentials.v1 import credentials_pb2 as cpb
from llmagg.credentials.v1 import credentials_pb2_grpc
from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg.ratelimit.v1 import ratelimit_pb2_grpc
from llmagg_devstack import write_config
from llmagg_router.adapters.ratelimit_quota import RatelimitQuota
from llmagg_router.domain.ports import QuotaKey, Usage

from ..helpers import ADMIN_KEY, SIM_KEY, wait_for

KEY = pb.QuotaKey(provider="ov-sim", account="ov-acct", model="m")


@pytest.fixture(scope="module")
def ratelimit_stack(tmp_path_factory, make_stack):
    run_dir = tmp_path_factory.mktemp("ratelimit-service")
    config = write_config(
        run_dir / "config.yaml",
        {
            "providers": [
                {"id": "ov-sim", "name": "Override test", "base_url": "http://127.0.0.1:9/v1", "limits": {"rpd": 5},
                 "models": [{"id": "m"}]},
                {"id": "lease-sim", "name": "Lease test", "base_url": "http://127.0.0.1:9/v1", "limits": {"rpd": 1000},
                 "models": [{"id": "m"}]},
                {"id": "open-sim", "name": "No limits", "base_url": "http://127.0.0.1:9/v1", "models": [{"id": "m"}]},
                {"id": "herd-sim", "name": "30 a day", "base_url": "http://127.0.0.1:9/v1", "limits": {"rpd": 30},
                 "models": [{"id": "m"}]},
            ],
            "accounts": [{"provider": "ov-sim", "alias": "ov-acct", "api_key_env": "SIM_PROVIDER_KEY"}],
        },
    )  # fmt: skip
    env = {
        "LLMAGG_CONFIG": str(config),
        "LLMAGG_ADMIN_KEY": ADMIN_KEY,
        "SIM_PROVIDER_KEY": SIM_KEY,
        "RATELIMIT_ACCOUNTS_REFRESH_S": "0.2",
        "RATELIMIT_LEASE_S": "30",  # no lease of these tests expires while they run
    }
    with make_stack(run_dir).running(env, gateway=False) as stack:
        yield stack


@pytest.fixture(scope="module")
def ratelimit(ratelimit_stack):
    with grpc.insecure_channel(ratelimit_stack.address("ratelimit")) as channel:
        yield ratelimit_pb2_grpc.RatelimitServiceStub(channel)


def router_token(stack) -> tuple[tuple[str, str]]:
    return (("x-llmagg-service-token", stack.service_token("router", "ratelimit")),)


def test_reserve_settle_and_headroom_answer_the_routers_token_only(ratelimit_stack, ratelimit):
    request = pb.ReserveRequest(key=pb.QuotaKey(provider="ov-sim", account="other", model="m"), estimated_tokens=1)
    gateway = (("x-llmagg-service-token", ratelimit_stack.service_token("ratelimit", "gateway")),)
    for metadata, code in [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        ((("x-llmagg-service-token", "not-the-router"),), grpc.StatusCode.UNAUTHENTICATED),
        (gateway, grpc.StatusCode.PERMISSION_DENIED),  # a client's call through the gateway
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            ratelimit.Reserve(request, metadata=metadata)
        assert caught.value.code() == code
    assert ratelimit.Reserve(request, metadata=router_token(ratelimit_stack)).granted


def test_bad_input_is_invalid_argument_and_a_bad_settlement_costs_no_other(ratelimit_stack, ratelimit):
    token = router_token(ratelimit_stack)
    with pytest.raises(grpc.RpcError) as caught:
        ratelimit.Reserve(pb.ReserveRequest(key=pb.QuotaKey(provider="ov-sim")), metadata=token)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    good = pb.Settlement(key=pb.QuotaKey(provider="ov-sim", account="bad-input", model="m"), outcome="ok")
    bad = pb.Settlement(key=pb.QuotaKey(provider="ov-sim", account="bad-input", model="m"), prompt_tokens=-5)
    reply = ratelimit.Settle(pb.SettleRequest(settlements=[bad, good]), metadata=token)
    assert reply.settled == 1
    assert [(r.list, r.index, r.reason) for r in reply.refused] == [
        ("settlements", 0, "`prompt_tokens` must be at least 0.")
    ]
    gateway = ("x-llmagg-service-token", ratelimit_stack.service_token("ratelimit", "gateway"))
    with pytest.raises(grpc.RpcError) as caught:  # usage is served through the gateway, which names the caller
        ratelimit.QueryUsage(pb.QueryUsageRequest(), metadata=(gateway,))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    admin = (gateway, ("x-llmagg-client-id", "admin-env"), ("x-llmagg-client-scope", "admin"))
    rows = ratelimit.QueryUsage(pb.QueryUsageRequest(account="bad-input"), metadata=admin).data
    assert [row.requests for row in rows] == [1]  # the good settlement beside the bad one was written


def test_an_accounts_limit_override_in_credentials_reaches_ratelimit(ratelimit_stack, ratelimit):
    token = router_token(ratelimit_stack)
    assert ratelimit.Reserve(pb.ReserveRequest(key=KEY, estimated_tokens=1), metadata=token).granted
    assert ratelimit.Headroom(pb.HeadroomRequest(keys=[KEY]), metadata=token).headroom[0].remaining == 0.8  # 4 of 5
    with ratelimit_stack.channel("credentials") as channel:
        credentials_pb2_grpc.CredentialsServiceStub(channel).UpdateAccount(
            cpb.UpdateAccountRequest(alias="ov-acct", limits={"rpd": 1}),
            metadata=(("authorization", f"Bearer {ADMIN_KEY}"),),
        )

    def exhausted() -> bool:
        room = ratelimit.Headroom(pb.HeadroomRequest(keys=[KEY]), metadata=token).headroom[0]
        return room.remaining == 0.0 and room.retry_after_s > 0

    wait_for(exhausted, "the override of 1 request a day in force", timeout_s=10)
    denied = ratelimit.Reserve(pb.ReserveRequest(key=KEY, estimated_tokens=1), metadata=token)
    assert not denied.granted and denied.reason == "rpd 1 on ov-sim/ov-acct"


def reserve_calls(stack) -> float:
    with urllib.request.urlopen(stack.metrics_url("ratelimit"), timeout=5) as response:
        text = response.read().decode()
    method = "/llmagg.ratelimit.v1.RatelimitService/Reserve"
    name = f'llmagg_grpc_server_handled_total{{code="OK",method="{method}",service="ratelimit"}}'
    return next((float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")), 0.0)


async def spend(stack, key: QuotaKey, attempts: int) -> None:
    """`attempts` reserved and settled one after another through the router's ledger client, then closed
    (which gives back what its leases have left and sends every settlement)."""
    quota = RatelimitQuota(stack.address("ratelimit"), Secret(stack.service_token("router", "ratelimit")))
    await quota.start()
    try:
        for _ in range(attempts):
            reservation = await quota.reserve(key, 10)
            assert reservation.granted
            await quota.settle(reservation, Usage(4, 6), "ok")
    finally:
        await quota.close()


async def test_the_routers_leases_double_while_they_are_spent_early(ratelimit_stack, ratelimit):
    before = reserve_calls(ratelimit_stack)
    await spend(ratelimit_stack, QuotaKey("open-sim", "lease-a", "m"), 40)
    # Leases of 2, 4, 8, 16 and 32 requests: five calls for forty attempts.
    assert reserve_calls(ratelimit_stack) - before == 5
    gateway = ("x-llmagg-service-token", ratelimit_stack.service_token("ratelimit", "gateway"))
    admin = (gateway, ("x-llmagg-client-id", "admin-env"), ("x-llmagg-client-scope", "admin"))
    rows = ratelimit.QueryUsage(pb.QueryUsageRequest(account="lease-a"), metadata=admin).data
    assert [(row.requests, row.prompt_tokens, row.completion_tokens) for row in rows] == [(40, 160, 240)]


async def test_what_a_lease_did_not_spend_comes_back(ratelimit_stack, ratelimit):
    await spend(ratelimit_stack, QuotaKey("lease-sim", "lease-b", "m"), 40)
    request = pb.HeadroomRequest(keys=[pb.QuotaKey(provider="lease-sim", account="lease-b", model="m")])
    [room] = ratelimit.Headroom(request, metadata=router_token(ratelimit_stack)).headroom
    assert room.remaining == pytest.approx(960 / 1000)  # 40 of 1,000 a day: the leases' rest was given back


async def test_concurrent_attempts_share_one_call_and_no_lease_holds_back_a_request(ratelimit_stack, ratelimit):
    quota = RatelimitQuota(
        ratelimit_stack.address("ratelimit"), Secret(ratelimit_stack.service_token("router", "ratelimit"))
    )
    await quota.start()
    key = QuotaKey("herd-sim", "herd", "m")
    provider_answers = asyncio.Event()

    async def attempt() -> bool:
        reservation = await quota.reserve(key, 10)
        if reservation.granted:
            await provider_answers.wait()
            await quota.settle(reservation, Usage(4, 6), "ok")
        return reservation.granted

    try:
        attempts = [asyncio.ensure_future(attempt()) for _ in range(20)]
        provider_answers.set()
        granted = await asyncio.gather(*attempts)
    finally:
        await quota.close()
    assert granted == [True] * 20  # 20 of the 30 a day: leases taken for some never starve the others
    request = pb.HeadroomRequest(keys=[pb.QuotaKey(provider="herd-sim", account="herd", model="m")])
    [room] = ratelimit.Headroom(request, metadata=router_token(ratelimit_stack)).headroom
    assert room.remaining == pytest.approx(10 / 30)
