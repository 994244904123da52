"""The suite's one credentials client: the listing (read on demand or kept by a poll), leases held for their TTL."""

from __future__ import annotations

import grpc
import pytest

from llmagg.credentials.client import CredentialsClient, CredentialsError
from llmagg.credentials.v1 import credentials_pb2 as pb


class Refused(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=code.name.lower())


class ScriptedCredentials:
    def __init__(self) -> None:
        self.listings = 0
        self.leases = 0
        self.down: grpc.StatusCode | None = None

    async def ListAccounts(self, request, **_):
        if self.down:
            raise Refused(self.down)
        self.listings += 1
        return pb.ListAccountsResponse(accounts=[pb.Account(provider="p", alias=f"a{self.listings}")])

    async def Lease(self, request, **_):
        if self.down:
            raise Refused(self.down)
        self.leases += 1
        return pb.LeaseResponse(api_key=f"key-{self.leases}", key_version=self.leases, ttl_seconds=60)


@pytest.fixture
def clock():
    return [0.0]


@pytest.fixture
def scripted():
    return ScriptedCredentials()


@pytest.fixture
def client(scripted, clock):
    client = CredentialsClient("127.0.0.1:9", None, clock=lambda: clock[0])
    client._stub = scripted
    return client


async def test_a_recent_listing_is_not_read_again(client, scripted, clock):
    assert [a.alias for a in await client.recent_accounts(30)] == ["a1"]
    clock[0] = 29
    assert [a.alias for a in await client.recent_accounts(30)] == ["a1"]
    clock[0] = 30
    assert [a.alias for a in await client.recent_accounts(30)] == ["a2"]
    assert (scripted.listings, client.listings) == (2, 2)


async def test_the_last_listing_stays_while_credentials_is_away(client, scripted, clock):
    with pytest.raises(CredentialsError, match="UNAVAILABLE"):
        scripted.down = grpc.StatusCode.UNAVAILABLE
        await client.recent_accounts(30)
    scripted.down = None
    await client.recent_accounts(30)
    scripted.down, clock[0] = grpc.StatusCode.UNAVAILABLE, 100
    assert [a.alias for a in await client.recent_accounts(30)] == ["a1"]
    with pytest.raises(ConnectionError, match="UNAVAILABLE"):
        await client.healthy()


async def test_a_lease_is_held_for_its_ttl_and_dropped_when_refused_for_good(client, scripted, clock):
    lease = await client.lease("p", "a1")
    assert (lease.key.reveal(), lease.key_version, lease.expires_at) == ("key-1", 1, 60)
    clock[0] = 59
    assert client.held("a1") is lease
    clock[0] = 60
    assert client.held("a1") is None
    scripted.down = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(CredentialsError) as unavailable:
        await client.lease("p", "a1")
    assert not unavailable.value.gone and client.leases["a1"] is lease  # kept: a caller may still serve it
    scripted.down = grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(CredentialsError) as refused:
        await client.lease("p", "a1")
    assert refused.value.gone and "a1" not in client.leases
