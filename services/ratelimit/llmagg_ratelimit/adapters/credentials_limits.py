"""Per-account limit overrides from the credentials service: its account listing, read every
`refresh_s` with this service's token and handed to the limit book. While credentials cannot be
reached the last listing stays in force (the `credentials` health name says so)."""

from __future__ import annotations

import logging

import grpc

from llmagg.common.grpc_client import service_channel
from llmagg.common.peers import Periodic, Reachability, service_metadata
from llmagg.common.secrets import Secret
from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg.credentials.v1 import credentials_pb2_grpc
from llmagg_ratelimit.domain.limits import LimitBook

log = logging.getLogger(__name__)
_CALL_TIMEOUT_S = 3.0


class CredentialsLimits:
    def __init__(self, address: str, token: Secret | None, book: LimitBook, refresh_s: float = 5.0) -> None:
        self._address = address
        self._metadata = service_metadata(token)
        self._book = book
        self._reachability = Reachability(log, "not read yet")
        self.healthy = self._reachability.healthy
        self._refresher = Periodic(refresh_s, self.refresh, log, "reading account limits from credentials")
        self._channel: grpc.aio.Channel | None = None
        self._stub: credentials_pb2_grpc.CredentialsServiceStub | None = None

    async def start(self) -> None:
        self._channel = service_channel(self._address)
        self._stub = credentials_pb2_grpc.CredentialsServiceStub(self._channel)
        await self.refresh()
        self._refresher.start()

    async def close(self) -> None:
        await self._refresher.stop()
        if self._channel is not None:
            await self._channel.close()

    async def refresh(self) -> None:
        try:
            response = await self._stub.ListAccounts(
                pb.ListAccountsRequest(), metadata=self._metadata, timeout=_CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            self._reachability.failed(
                f"credentials service at {self._address}: {error.code().name} {error.details()}",
                "cannot read account limit overrides, keeping the last ones: %s",
            )
            return
        self._reachability.answered()
        self._book.set_overrides(
            {(item.provider, item.alias): dict(item.limits) for item in response.accounts if item.limits}
        )
