"""Following the discovery service's catalogue (WatchCatalog) from another service of the suite.

Each message carries the whole catalogue: `apply` gets it with the changes that made it. A broken watch
is opened again with a backoff; until the first message, and whenever discovery cannot be reached,
the follower keeps what it last applied, and `healthy()` says why it is not following.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import grpc

from llmagg.common.backoff import Backoff
from llmagg.common.grpc_client import service_channel
from llmagg.common.logging import log_fields
from llmagg.common.peers import service_metadata
from llmagg.common.secrets import Secret
from llmagg.discovery.v1 import discovery_pb2 as pb
from llmagg.discovery.v1 import discovery_pb2_grpc


class CatalogWatch:
    def __init__(
        self,
        address: str,
        apply: Callable[[pb.Catalog, Sequence[pb.CatalogChange]], None],
        log: logging.Logger,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
        token: Secret | None = None,
    ) -> None:
        self._address = address
        self._metadata = service_metadata(token)  # the token discovery knows this service by
        self._apply = apply
        self._log = log
        self._backoff = Backoff(retry_min_s, retry_max_s, jitter=(0.8, 1.2))
        self.problem: str | None = "not connected yet"
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._received = asyncio.Event()

    async def start(self) -> None:
        self._channel = service_channel(self._address)
        self._task = asyncio.create_task(self._follow())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None:
            await self._channel.close()

    async def healthy(self) -> bool:
        if self.problem:
            raise ConnectionError(self.problem)
        return True

    async def first_catalogue(self, timeout_s: float) -> bool:
        """Wait (bounded) for the first catalogue; False when it did not come in time."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._received.wait()
        return self._received.is_set()

    def received(self, catalog: pb.Catalog, changes: Sequence[pb.CatalogChange] = ()) -> None:
        self._apply(catalog, changes)
        self._received.set()

    async def _follow(self) -> None:
        stub = discovery_pb2_grpc.DiscoveryServiceStub(self._channel)
        failures = 0
        while True:
            try:
                async for message in stub.WatchCatalog(
                    pb.WatchCatalogRequest(), metadata=self._metadata, wait_for_ready=False
                ):
                    if self.problem:
                        self._log.info(
                            "following the discovery catalogue", extra=log_fields(revision=message.catalog.revision)
                        )
                    self.received(message.catalog, message.changes)
                    self.problem = None  # only once a catalogue has been applied: one that cannot be backs off
                    failures = 0
                problem = "the catalogue watch ended"
            except grpc.aio.AioRpcError as error:
                problem = f"discovery at {self._address}: {error.code().name}"
            except Exception as error:  # a catalogue it cannot read must not end the watch for good
                self._log.exception("reading the discovery catalogue failed")
                problem = f"unreadable catalogue: {type(error).__name__}"
            if self.problem != problem:
                self._log.warning("discovery catalogue unavailable, keeping the last one: %s", problem)
            self.problem = problem
            failures += 1
            await asyncio.sleep(self._backoff.delay(failures))
