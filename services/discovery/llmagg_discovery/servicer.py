"""gRPC servicer of DiscoveryService: translates requests to the Discovery core and its answers back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.watch_streams import WatchStreams
from llmagg.discovery.v1 import discovery_pb2 as pb
from llmagg.discovery.v1 import discovery_pb2_grpc
from llmagg_discovery import converters
from llmagg_discovery.domain.discovery import Discovery, UnknownSource

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DiscoveryService"].full_name
MAX_CHANGES = 1000


class DiscoveryServicer(discovery_pb2_grpc.DiscoveryServiceServicer):
    def __init__(self, discovery: Discovery, streams: WatchStreams) -> None:
        self._discovery = discovery
        self._streams = streams  # the watches, ended when the service stops
        self._whole: tuple[int, pb.Catalog] | None = None

    def _whole_catalog(self) -> pb.Catalog:
        """The whole catalogue as a message, built once per revision (every watcher gets the same one)."""
        snapshot = self._discovery.snapshot()
        if self._whole is None or self._whole[0] != snapshot.revision:
            self._whole = (snapshot.revision, converters.catalog(snapshot))
        return self._whole[1]

    async def GetCatalog(self, request: pb.GetCatalogRequest, context) -> pb.GetCatalogResponse:
        catalog = converters.catalog(
            self._discovery.snapshot(), request.provider, request.free_only, request.include_retired
        )
        statuses = [converters.source_status(s) for s in self._discovery.statuses()]
        return pb.GetCatalogResponse(catalog=catalog, sources=statuses)

    async def WatchCatalog(self, request, context) -> AsyncIterator[pb.WatchCatalogResponse]:
        async for _, changes in self._streams.until_stopped(self._discovery.watch()):
            yield pb.WatchCatalogResponse(
                catalog=self._whole_catalog(), changes=[converters.change(c) for c in changes]
            )

    async def ListChanges(self, request: pb.ListChangesRequest, context) -> pb.ListChangesResponse:
        if request.limit < 0:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT, "`limit` must not be negative.", code="invalid_limit", param="limit"
            )
        since = converters.since(request.since, time.time())
        limit = min(request.limit or MAX_CHANGES, MAX_CHANGES)
        changes = await self._discovery.changes(since, request.provider or None, limit)
        return pb.ListChangesResponse(changes=[converters.change(c) for c in changes])

    async def RefreshNow(self, request: pb.RefreshNowRequest, context) -> pb.RefreshNowResponse:
        try:
            changes = await self._discovery.refresh(request.sources)
        except UnknownSource as problem:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT, str(problem), code="unknown_source", param="sources"
            ) from None
        return pb.RefreshNowResponse(
            sources=[converters.source_status(s) for s in self._discovery.statuses()],
            revision=self._discovery.snapshot().revision,
            changes=[converters.change(c) for c in changes],
        )


def add_to_server(servicer: DiscoveryServicer, server: grpc.aio.Server) -> None:
    discovery_pb2_grpc.add_DiscoveryServiceServicer_to_server(servicer, server)
