"""The credentials service on a real OpenBao, and the router leasing from it, over gRPC (no gateway)."""

from __future__ import annotations

import time

import grpc
import hvac
import pytest
from hvac import exceptions as hvac_errors

from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg.credentials.v1 import credentials_pb2_grpc
from llmagg.router.v1 import router_pb2 as rpb
from llmagg.router.v1 import router_pb2_grpc

from ..helpers import ADMIN_KEY, ROUTER_TEST_ENV, SIM_KEY, arrivals, scenario, wait_for

ADMIN = (("authorization", f"Bearer {ADMIN_KEY}"),)
HELLO = [rpb.ChatMessage(role="user", content="hi")]


def router_token(stack) -> tuple[tuple[str, str], ...]:
    return (("x-llmagg-service-token", stack.service_token("router", "credentials")),)


@pytest.fixture(scope="module")
def live(router_config, tmp_path_factory, make_stack):
    """Services on the session's OpenBao; the router lists accounts every 0.3 s (leases last 60 s)."""
    stack = make_stack(tmp_path_factory.mktemp("credentials-live"))
    env = {**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config), "ROUTER_ACCOUNTS_REFRESH_S": "0.3"}
    with stack.running(env, gateway=False):
        yield stack


@pytest.fixture(scope="module")
def credentials(live):
    with live.channel("credentials") as channel:
        yield credentials_pb2_grpc.CredentialsServiceStub(channel)


@pytest.fixture(scope="module")
def router(live):
    with live.channel("router") as channel:
        yield router_pb2_grpc.RouterServiceStub(channel)


def chat(router, model: str) -> rpb.ChatResponse:
    return router.Chat(rpb.ChatRequest(model=model, messages=HELLO), timeout=30)


def keys_seen(simulator, provider: str) -> list[str]:
    return [r["headers"].get("authorization", "") for r in simulator.requests(provider)]


def test_accounts_of_the_config_were_imported_at_start(credentials):
    listed = credentials.ListAccounts(pb.ListAccountsRequest(provider="sim-fast"), metadata=ADMIN).accounts
    assert [(a.alias, a.source, a.enabled, a.key_version) for a in listed] == [("sim-fast-acct", "config", True, 1)]


def test_crud_over_grpc_never_returns_key_material(credentials):
    key, rotated_key = "sk-crud-FAKE-one", "sk-crud-FAKE-two"
    added = credentials.AddAccount(
        pb.AddAccountRequest(provider="sim-fast", alias="crud-1", api_key=key, labels={"team": "a"}), metadata=ADMIN
    )
    got = credentials.GetAccount(pb.GetAccountRequest(alias="crud-1"), metadata=ADMIN)
    updated = credentials.UpdateAccount(
        pb.UpdateAccountRequest(alias="crud-1", enabled=False, priority=-1, limits={"rpm": 20}), metadata=ADMIN
    )
    listed = credentials.ListAccounts(pb.ListAccountsRequest(), metadata=ADMIN)
    rotated = credentials.RotateAccountKey(
        pb.RotateAccountKeyRequest(alias="crud-1", api_key=rotated_key), metadata=ADMIN
    )
    assert (updated.account.enabled, updated.account.disabled_by, dict(updated.account.limits)) == (
        False, "admin", {"rpm": 20.0},
    )  # fmt: skip
    assert (rotated.account.key_version, dict(rotated.account.labels)) == (2, {"team": "a"})
    credentials.DeleteAccount(pb.DeleteAccountRequest(alias="crud-1"), metadata=ADMIN)
    with pytest.raises(grpc.RpcError) as caught:
        credentials.GetAccount(pb.GetAccountRequest(alias="crud-1"), metadata=ADMIN)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    answered = b"".join(m.SerializeToString() for m in (added, got, updated, listed, rotated))
    assert key.encode() not in answered and rotated_key.encode() not in answered


@pytest.mark.parametrize(
    ("request_fields", "status", "code"),
    [
        (
            {"provider": "no-such-provider", "alias": "x", "api_key": "sk-x-FAKE"},
            "INVALID_ARGUMENT",
            "unknown_provider",
        ),
        ({"provider": "sim-fast", "alias": "x", "api_key": ""}, "INVALID_ARGUMENT", "missing_api_key"),
        (
            {"provider": "sim-fast", "alias": "sim-fast-acct", "api_key": "sk-x-FAKE"},
            "ALREADY_EXISTS",
            "account_exists",
        ),
    ],
)
def test_bad_writes_are_refused_with_their_status_and_write_nothing(credentials, request_fields, status, code):
    before = credentials.ListAccounts(pb.ListAccountsRequest(), metadata=ADMIN)
    with pytest.raises(grpc.RpcError) as caught:
        credentials.AddAccount(pb.AddAccountRequest(**request_fields), metadata=ADMIN)
    assert caught.value.code() is getattr(grpc.StatusCode, status)
    assert dict(caught.value.trailing_metadata())["x-openai-error"].count(f'"code": "{code}"') == 1
    assert credentials.ListAccounts(pb.ListAccountsRequest(), metadata=ADMIN) == before


def test_a_lease_answers_the_routers_token_only(credentials, live):
    request = pb.LeaseRequest(provider="sim-fast", alias="sim-fast-acct")
    leased = credentials.Lease(request, metadata=router_token(live))
    assert leased.api_key == SIM_KEY and leased.ttl_seconds == 60 and leased.key_version == 1
    for metadata, status in [
        (ADMIN, grpc.StatusCode.PERMISSION_DENIED),
        ((), grpc.StatusCode.UNAUTHENTICATED),
        ((("x-llmagg-service-token", "forged"),), grpc.StatusCode.UNAUTHENTICATED),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            credentials.Lease(request, metadata=metadata)
        assert caught.value.code() is status
        assert SIM_KEY not in (caught.value.details() or "")


def test_the_routers_token_cannot_write(credentials, live):
    with pytest.raises(grpc.RpcError) as caught:
        credentials.AddAccount(
            pb.AddAccountRequest(provider="sim-fast", alias="by-router", api_key="sk-x-FAKE"),
            metadata=router_token(live),
        )
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_vault_policies_let_the_reader_token_read_accounts_and_refuse_every_write(live, openbao):
    reader = hvac.Client(url=openbao.address, token=openbao.token_file(live.namespace, "reader").read_text().strip())
    mount = live.namespace
    data = reader.secrets.kv.v2.read_secret_version(
        "accounts/sim-fast-acct", mount_point=mount, raise_on_deleted_version=True
    )["data"]["data"]
    assert data["provider"] == "sim-fast"
    with pytest.raises(hvac_errors.Forbidden):
        reader.secrets.kv.v2.create_or_update_secret("accounts/evil", secret={"api_key": "x"}, mount_point=mount)
    with pytest.raises(hvac_errors.Forbidden):
        reader.secrets.kv.v2.delete_metadata_and_all_versions("accounts/sim-fast-acct", mount_point=mount)
    with pytest.raises(hvac_errors.Forbidden):
        reader.secrets.kv.v2.read_secret_version(
            "client-keys/anything", mount_point=mount, raise_on_deleted_version=True
        )
    writer = hvac.Client(url=openbao.address, token=openbao.token_file(mount, "credentials").read_text().strip())
    openbao.root_client().sys.enable_secrets_engine("kv", path=f"{mount}-other", options={"version": "2"})
    with pytest.raises(hvac_errors.Forbidden):  # the credentials token owns its own mount only
        writer.secrets.kv.v2.create_or_update_secret("accounts/x", secret={"a": "b"}, mount_point=f"{mount}-other")


def test_an_account_added_while_running_is_routed_to_without_a_restart(credentials, router, simulator):
    credentials.DeleteAccount(pb.DeleteAccountRequest(alias="garbled-backup-acct"), metadata=ADMIN)
    wait_for(lambda: _not_routable(router, "garbled-backup/sim-small"), "the deleted account to leave the router")
    credentials.AddAccount(
        pb.AddAccountRequest(provider="garbled-backup", alias="added-live", api_key="sk-added-FAKE-key"),
        metadata=ADMIN,
    )
    simulator.reset("garbled-backup")
    response = wait_for(lambda: _routed(router, "garbled-backup/sim-small"), "the added account to be routable")
    assert response.route.account == "added-live"
    assert keys_seen(simulator, "garbled-backup")[-1] == "Bearer sk-added-FAKE-key"


def test_a_rotated_key_is_used_without_a_restart(credentials, router, simulator):
    simulator.reset("cut-early-backup")
    chat(router, "cut-early-backup/sim-small")
    assert keys_seen(simulator, "cut-early-backup") == [f"Bearer {SIM_KEY}"]
    credentials.RotateAccountKey(
        pb.RotateAccountKeyRequest(alias="cut-early-backup-acct", api_key="sk-rotated-FAKE-key"), metadata=ADMIN
    )

    def rotated_key_used() -> bool:
        chat(router, "cut-early-backup/sim-small")
        return keys_seen(simulator, "cut-early-backup")[-1] == "Bearer sk-rotated-FAKE-key"

    wait_for(rotated_key_used, "the rotated key upstream", timeout_s=10)
    chat(router, "cut-early-backup/sim-small")
    assert keys_seen(simulator, "cut-early-backup")[-1] == "Bearer sk-rotated-FAKE-key"  # never the old one again


def test_a_401_disables_the_account_for_everyone_and_the_same_request_is_served_by_another(
    credentials, router, simulator
):
    providers = scenario(simulator, "bad-key")
    assert chat(router, "bad-key").route.provider == "bad-key-backup"
    assert arrivals(simulator, providers) == ["bad-key", "bad-key-backup"]
    account = credentials.GetAccount(pb.GetAccountRequest(alias="bad-key-acct"), metadata=ADMIN).account
    assert (account.enabled, account.disabled_by) == (False, "upstream")
    assert account.disabled_reason.startswith("the provider rejected the key") and account.disabled_at
    assert chat(router, "bad-key").route.provider == "bad-key-backup"
    assert arrivals(simulator, providers) == ["bad-key", "bad-key-backup", "bad-key-backup"]  # never tried again
    rotated = credentials.RotateAccountKey(
        pb.RotateAccountKeyRequest(alias="bad-key-acct", api_key="sk-fixed-FAKE-key"), metadata=ADMIN
    )
    assert rotated.account.enabled is True  # a rotation re-enables it


def test_an_account_an_admin_disables_is_no_longer_used(credentials, router, simulator):
    credentials.UpdateAccount(pb.UpdateAccountRequest(alias="hang-backup-acct", enabled=False), metadata=ADMIN)
    wait_for(lambda: _not_routable(router, "hang-backup/sim-small"), "the disabled account to leave rotation")
    simulator.reset("hang-backup")
    with pytest.raises(grpc.RpcError) as caught:
        chat(router, "hang-backup/sim-small")
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert simulator.requests("hang-backup") == []
    credentials.UpdateAccount(pb.UpdateAccountRequest(alias="hang-backup-acct", enabled=True), metadata=ADMIN)
    wait_for(lambda: _routed(router, "hang-backup/sim-small"), "the enabled account back in rotation")


def _routed(router, model: str):
    try:
        return chat(router, model)
    except grpc.RpcError:
        return None


def _not_routable(router, model: str) -> bool:
    try:
        chat(router, model)
    except grpc.RpcError as error:
        return error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND)
    return False


# --- the lease's TTL bounds how long a rotated key is used, whatever the listing does ---------------


@pytest.fixture(scope="module")
def short_leases(router_config, tmp_path_factory, make_stack):
    """Leases of 1 s and a listing so rare (60 s) that only the lease's end can bring a rotation in."""
    stack = make_stack(tmp_path_factory.mktemp("short-leases"))
    env = {
        **ROUTER_TEST_ENV,
        "LLMAGG_CONFIG": str(router_config),
        "ROUTER_ACCOUNTS_REFRESH_S": "60",
        "CREDENTIALS_LEASE_TTL_S": "1",
    }
    with stack.running(env, gateway=False):
        yield stack


def test_a_rotated_key_is_used_by_no_router_after_the_lease_ttl(short_leases, simulator):
    with (
        short_leases.channel("router") as router_channel,
        short_leases.channel("credentials") as credentials_channel,
    ):
        router = router_pb2_grpc.RouterServiceStub(router_channel)
        credentials = credentials_pb2_grpc.CredentialsServiceStub(credentials_channel)
        simulator.reset("rl-backup")
        chat(router, "rl-backup/sim-small")
        assert keys_seen(simulator, "rl-backup") == [f"Bearer {SIM_KEY}"]
        credentials.RotateAccountKey(
            pb.RotateAccountKeyRequest(alias="rl-backup-acct", api_key="sk-ttl-FAKE-key"), metadata=ADMIN
        )
        rotated_at = time.monotonic()

        def rotated_key_used() -> bool:
            chat(router, "rl-backup/sim-small")
            return keys_seen(simulator, "rl-backup")[-1] == "Bearer sk-ttl-FAKE-key"

        # The listing (every 60 s) cannot bring it: only the end of the 1 s lease can, well within 8 s
        # even on a busy machine.
        wait_for(rotated_key_used, "the rotated key upstream", timeout_s=8)
        assert time.monotonic() - rotated_at >= 0
