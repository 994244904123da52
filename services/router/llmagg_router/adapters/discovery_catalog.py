"""The CatalogSource of the suite: the discovery service's catalogue, followed over WatchCatalog.

Until the first catalogue arrives, and whenever discovery cannot be reached, the router routes on the
last catalogue it had (at first: the configuration alone); discovery is never on the path of a chat
request. Each message of the watch carries the whole catalogue: the view is rebuilt from it and
`generation` bumped, so the next request routes on it (a retired model is never chosen again, a new
free model can be). A broken watch is opened again with a backoff; `healthy()` says whether it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping

import grpc

from llmagg.common.grpc_client import service_channel
from llmagg.common.logging import log_fields
from llmagg.discovery.v1 import discovery_pb2 as pb
from llmagg.discovery.v1 import discovery_pb2_grpc
from llmagg.registry import Provider
from llmagg_router.domain.catalog_view import (
    CatalogView,
    DiscoveredModel,
    DiscoveredProvider,
    discovered_view,
    registry_view,
)

log = logging.getLogger(__name__)

_STATES = {
    pb.MODEL_STATE_ACTIVE: "active",
    pb.MODEL_STATE_UNCONFIRMED: "unconfirmed",
    pb.MODEL_STATE_SUSPENDED: "suspended",
    pb.MODEL_STATE_RETIRED: "retired",
}
_KEEPALIVE = [("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_permit_without_calls", 1)]


def view_from(catalog: pb.Catalog, configured: Mapping[str, Provider]) -> CatalogView:
    models = [
        DiscoveredModel(
            provider=m.provider,
            model=m.model,
            state=_STATES.get(m.state, "unconfirmed"),
            reason=m.state_reason,
            name=m.name,
            type=m.type or "chat",
            free=m.free,
            context_length=m.context_length,
            quality=m.quality,
            aliases=tuple(m.aliases),
            limits=dict(m.limits),
            capabilities=tuple(m.capabilities),
            expiration_date=m.expiration_date,
        )
        for m in catalog.models
    ]
    providers = [
        DiscoveredProvider(p.id, _STATES.get(p.state, "active"), p.state_reason, dict(p.limits))
        for p in catalog.providers
    ]
    return discovered_view(configured, models, providers)


class DiscoveryCatalog:
    def __init__(
        self, address: str, configured: Mapping[str, Provider], retry_min_s: float = 0.5, retry_max_s: float = 30.0
    ) -> None:
        self._address = address
        self._configured = configured
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._view = registry_view(configured)
        self.generation = 0
        self.revision = 0  # the discovery revision the view was built from (0: none yet)
        self._problem: str | None = "not connected yet"
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._received = asyncio.Event()

    def view(self) -> CatalogView:
        return self._view

    async def start(self) -> None:
        self._channel = service_channel(self._address, options=_KEEPALIVE)
        self._task = asyncio.create_task(self._follow())

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

    async def first_catalogue(self, timeout_s: float) -> bool:
        """Wait (bounded) for the first catalogue; False when it did not come in time."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._received.wait()
        return self._received.is_set()

    def apply(self, catalog: pb.Catalog) -> None:
        self._view = view_from(catalog, self._configured)
        self.revision = catalog.revision
        self.generation += 1
        self._received.set()

    async def _follow(self) -> None:
        stub = discovery_pb2_grpc.DiscoveryServiceStub(self._channel)
        delay = self._retry_min_s
        while True:
            try:
                async for message in stub.WatchCatalog(pb.WatchCatalogRequest(), wait_for_ready=False):
                    if self._problem:
                        log.info(
                            "following the discovery catalogue", extra=log_fields(revision=message.catalog.revision)
                        )
                    self._problem = None
                    delay = self._retry_min_s
                    self.apply(message.catalog)
                    for change in message.changes:
                        log.info(
                            "catalogue change: %s %s %s",
                            pb.ChangeKind.Name(change.kind).removeprefix("CHANGE_KIND_").lower(),
                            change.provider,
                            change.model,
                            extra=log_fields(detail=change.detail, source=change.source),
                        )
                problem = "the catalogue watch ended"
            except grpc.aio.AioRpcError as error:
                problem = f"discovery at {self._address}: {error.code().name}"
            except Exception as error:  # a catalogue the router cannot read must not end the watch for good
                log.exception("reading the discovery catalogue failed")
                problem = f"unreadable catalogue: {type(error).__name__}"
            if self._problem != problem:
                log.warning("discovery catalogue unavailable, routing on the last one: %s", problem)
            self._problem = problem
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._retry_max_s)
