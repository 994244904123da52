"""Per-account limit overrides from the credentials service: its account listing, read every
`refresh_s` with this service's token and handed to the limit book. While credentials cannot be
reached the last listing stays in force (the `credentials` health name says so)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc

from llmagg.common.grpc_interceptors import SERVICE_TOKEN_METADATA
from llmagg.common.secrets import Secret
from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg.credentials.v1 import credentials_pb2_grpc
from llmagg_ratelimit.domain.limits import LimitBook

log = logging.getLogger(__name__)
_CALL_TIMEOUT_S = 3.0


class CredentialsLimits:
    def __init__(self, address: str, token: Secret | None, book: LimitBook, refresh_s: float = 5.0) -> None:
        self._address = address
        self._metadata = ((SERVICE_TOKEN_METADATA, token.reveal()),) if token else ()
        self._book = book
        self._refresh_s = refresh_s
        self._problem: str | None = "not read yet"
        self._channel: grpc.aio.Channel | None = None
        self._stub: credentials_pb2_grpc.CredentialsServiceStub | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._address)
        self._stub = credentials_pb2_grpc.CredentialsServiceStub(self._channel)
        await self.refresh()
        self._task = asyncio.create_task(self._keep_fresh())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None:
            await self._channel.close()

    async def healthy(self) -> bool:
        if self._problem:
            raise ConnectionError(self._problem)
        return True

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception:  # the loop must outlive any one bad round
                log.exception("reading account limits from the credentials service failed")

    async def refresh(self) -> None:
        try:
            response = await self._stub.ListAccounts(
                pb.ListAccountsRequest(), metadata=self._metadata, timeout=_CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            problem = f"credentials service at {self._address}: {error.code().name} {error.details()}"
            if self._problem != problem:
                log.warning("cannot read account limit overrides, keeping the last ones: %s", problem)
            self._problem = problem
            return
        self._problem = None
        self._book.set_overrides(
            {(item.provider, item.alias): dict(item.limits) for item in response.accounts if item.limits}
        )
