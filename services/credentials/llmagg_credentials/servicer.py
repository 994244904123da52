"""gRPC servicer of CredentialsService: checks who calls, translates, delegates to the domain."""

from __future__ import annotations

import grpc

from llmagg.common.caller_auth import calling_peer
from llmagg.common.grpc_interceptors import metadata_value
from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg.credentials.v1 import credentials_pb2_grpc
from llmagg_credentials import converters
from llmagg_credentials.domain.access import Access
from llmagg_credentials.domain.accounts import AccountBook
from llmagg_credentials.domain.client_keys import ClientKeys

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["CredentialsService"].full_name


class CredentialsServicer(credentials_pb2_grpc.CredentialsServiceServicer):
    def __init__(self, accounts: AccountBook, keys: ClientKeys, access: Access, lease_ttl_s: float) -> None:
        self._accounts = accounts
        self._keys = keys
        self._access = access
        self._lease_ttl_s = lease_ttl_s

    async def _allow(self, method: str, context: grpc.aio.ServicerContext) -> None:
        authorization = metadata_value(context.invocation_metadata(), "authorization") or ""
        await self._access.require(method, calling_peer.get(), authorization)

    async def AddAccount(self, request: pb.AddAccountRequest, context) -> pb.AddAccountResponse:
        await self._allow("AddAccount", context)
        record = await self._accounts.add(
            request.provider,
            request.alias,
            request.api_key,
            labels=dict(request.labels),
            priority=request.priority,
            limits=dict(request.limits),
            params=dict(request.params),
            enabled=request.enabled if request.HasField("enabled") else True,
        )
        return pb.AddAccountResponse(account=converters.account(record))

    async def ListAccounts(self, request: pb.ListAccountsRequest, context) -> pb.ListAccountsResponse:
        await self._allow("ListAccounts", context)
        records = await self._accounts.list(request.provider)
        return pb.ListAccountsResponse(accounts=[converters.account(r) for r in records])

    async def GetAccount(self, request: pb.GetAccountRequest, context) -> pb.GetAccountResponse:
        await self._allow("GetAccount", context)
        return pb.GetAccountResponse(account=converters.account(await self._accounts.get(request.alias)))

    async def UpdateAccount(self, request: pb.UpdateAccountRequest, context) -> pb.UpdateAccountResponse:
        await self._allow("UpdateAccount", context)
        record = await self._accounts.update(
            request.alias,
            enabled=request.enabled if request.HasField("enabled") else None,
            labels=dict(request.labels),
            priority=request.priority if request.HasField("priority") else None,
            limits=dict(request.limits),
            remove_limits=list(request.remove_limits),
        )
        return pb.UpdateAccountResponse(account=converters.account(record))

    async def RotateAccountKey(self, request: pb.RotateAccountKeyRequest, context) -> pb.RotateAccountKeyResponse:
        await self._allow("RotateAccountKey", context)
        record = await self._accounts.rotate(request.alias, request.api_key)
        return pb.RotateAccountKeyResponse(account=converters.account(record))

    async def DeleteAccount(self, request: pb.DeleteAccountRequest, context) -> pb.DeleteAccountResponse:
        await self._allow("DeleteAccount", context)
        await self._accounts.delete(request.alias)
        return pb.DeleteAccountResponse()

    async def Lease(self, request: pb.LeaseRequest, context) -> pb.LeaseResponse:
        await self._allow("Lease", context)
        record = await self._accounts.lease(request.provider, request.alias, probe=request.probe)
        return converters.lease(record, self._lease_ttl_s)

    async def ReportOutcome(self, request: pb.ReportOutcomeRequest, context) -> pb.ReportOutcomeResponse:
        await self._allow("ReportOutcome", context)
        record = await self._accounts.report(
            request.provider,
            request.alias,
            accepted=request.outcome == pb.OUTCOME_ACCEPTED,
            status=request.status,
            key_version=request.key_version,
        )
        return pb.ReportOutcomeResponse(account=converters.account(record))

    async def CreateClientKey(self, request: pb.CreateClientKeyRequest, context) -> pb.CreateClientKeyResponse:
        await self._allow("CreateClientKey", context)
        record, secret = await self._keys.create(request.name, request.scope)
        return pb.CreateClientKeyResponse(key=converters.client_key(record), secret=secret.reveal())

    async def ListClientKeys(self, request: pb.ListClientKeysRequest, context) -> pb.ListClientKeysResponse:
        await self._allow("ListClientKeys", context)
        return pb.ListClientKeysResponse(keys=[converters.client_key(r) for r in await self._keys.list()])

    async def RevokeClientKey(self, request: pb.RevokeClientKeyRequest, context) -> pb.RevokeClientKeyResponse:
        await self._allow("RevokeClientKey", context)
        return pb.RevokeClientKeyResponse(key=converters.client_key(await self._keys.revoke(request.id)))


def add_to_server(servicer: CredentialsServicer, server: grpc.aio.Server) -> None:
    credentials_pb2_grpc.add_CredentialsServiceServicer_to_server(servicer, server)
