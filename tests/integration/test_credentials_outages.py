"""Stacks with an OpenBao of their own: accounts survive restarts; with Vault down the router keeps serving."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg.credentials.v1 import credentials_pb2_grpc
from llmagg.router.v1 import router_pb2 as rpb
from llmagg.router.v1 import router_pb2_grpc
from llmagg_devstack import Ports, Stack

from ..helpers import ADMIN_KEY, ROUTER_TEST_ENV, SIM_KEY, wait_for

ADMIN = (("authorization", f"Bearer {ADMIN_KEY}"),)
HELLO = [rpb.ChatMessage(role="user", content="hi")]


def stubs(stack: Stack):
    credentials = stack.channel("credentials")
    router = stack.channel("router")
    return (
        credentials_pb2_grpc.CredentialsServiceStub(credentials),
        router_pb2_grpc.RouterServiceStub(router),
        health_pb2_grpc.HealthStub(credentials),
        (credentials, router),
    )


def test_accounts_and_keys_survive_a_restart_of_the_whole_stack(router_config, tmp_path):
    env = {"LLMAGG_CONFIG": str(router_config), "SIM_PROVIDER_KEY": SIM_KEY}  # no LLMAGG_ADMIN_KEY: a key file
    first = Stack(tmp_path, Ports.free())
    try:
        first.start_services(env)
        admin_key = first.admin_key_file.read_text().strip()
        assert first.admin_key_file.stat().st_mode & 0o777 == 0o600
        init = tmp_path / "openbao" / "init.json"
        assert init.stat().st_mode & 0o777 == 0o600 and (tmp_path / "openbao").stat().st_mode & 0o777 == 0o700
        credentials, _, _, channels = stubs(first)
        metadata = (("authorization", f"Bearer {admin_key}"),)
        credentials.AddAccount(
            pb.AddAccountRequest(provider="sim-fast", alias="persisted", api_key="sk-persist-FAKE-key"),
            metadata=metadata,
        )
        created = credentials.CreateClientKey(pb.CreateClientKeyRequest(name="kept"), metadata=metadata)
        for channel in channels:
            channel.close()
    finally:
        first.stop()
    again = Stack(tmp_path, Ports.free())  # new ports, same run directory: OpenBao is unsealed from its files
    try:
        again.start_services(env)
        assert again.admin_key_file.read_text().strip() == admin_key  # not made anew
        assert "first start" not in (tmp_path / "credentials.log").read_text()
        credentials, _, _, channels = stubs(again)
        metadata = (("authorization", f"Bearer {admin_key}"),)
        account = credentials.GetAccount(pb.GetAccountRequest(alias="persisted"), metadata=metadata).account
        assert (account.provider, account.source, account.key_version) == ("sim-fast", "cli", 1)
        assert created.key.id in {
            k.id for k in credentials.ListClientKeys(pb.ListClientKeysRequest(), metadata=metadata).keys
        }
        imported = credentials.ListAccounts(pb.ListAccountsRequest(provider="sim-fast"), metadata=metadata).accounts
        assert [a.alias for a in imported] == ["persisted", "sim-fast-acct"]  # the import did not duplicate
        for channel in channels:
            channel.close()
    finally:
        again.stop()


@pytest.fixture
def vault_down(router_config, tmp_path):
    """A stack with leases of 1 s, whose OpenBao the test stops."""
    stack = Stack(tmp_path, Ports.free())
    env = {
        **ROUTER_TEST_ENV,
        "LLMAGG_CONFIG": str(router_config),
        "CREDENTIALS_LEASE_TTL_S": "1",
        "CREDENTIALS_READINESS_INTERVAL_S": "0.3",
        "CREDENTIALS_STORE_CACHE_S": "0.2",
        "ROUTER_ACCOUNTS_REFRESH_S": "0.3",
    }
    with stack.running(env, gateway=False):
        yield stack


def test_with_vault_down_the_router_serves_on_held_leases_and_writes_fail_clearly(vault_down, simulator):
    credentials, router, health, channels = stubs(vault_down)
    simulator.reset("sim-fast")
    assert (
        router.Chat(rpb.ChatRequest(model="sim-fast/sim-small", messages=HELLO), timeout=30).route.provider
        == "sim-fast"
    )
    [openbao] = [p for p in vault_down.processes if p.name == "openbao"]
    vault_down.processes.remove(openbao)
    openbao.stop()

    def served_on_a_held_lease() -> bool:
        # Every request is answered; once the 1 s lease has run out its renewal fails and the held key serves.
        response = router.Chat(rpb.ChatRequest(model="sim-fast/sim-small", messages=HELLO), timeout=30)
        assert response.route.provider == "sim-fast"
        return "lease renewal failed" in (vault_down.run_dir / "router.log").read_text()

    wait_for(served_on_a_held_lease, "a request served on a held lease")
    assert simulator.requests("sim-fast")[-1]["headers"]["authorization"] == f"Bearer {SIM_KEY}"

    with pytest.raises(grpc.RpcError) as caught:
        credentials.AddAccount(
            pb.AddAccountRequest(provider="sim-fast", alias="while-down", api_key="sk-down-FAKE-key"), metadata=ADMIN
        )
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "credential store is unavailable" in caught.value.details()
    assert "nothing was changed" in caught.value.details()

    def vault_not_serving() -> bool:
        status = health.Check(health_pb2.HealthCheckRequest(service="vault"), timeout=2).status
        return status == health_pb2.HealthCheckResponse.NOT_SERVING

    wait_for(vault_not_serving, "the vault health name NOT_SERVING")
    overall = health.Check(health_pb2.HealthCheckRequest(), timeout=2).status
    assert overall == health_pb2.HealthCheckResponse.SERVING  # leases and ext_authz go on
    assert "vault is unusable" in (vault_down.run_dir / "credentials.log").read_text()
    listed = credentials.ListAccounts(pb.ListAccountsRequest(provider="sim-fast"), metadata=ADMIN).accounts
    assert [a.alias for a in listed] == ["sim-fast-acct"]  # the last listing read
    for channel in channels:
        channel.close()
