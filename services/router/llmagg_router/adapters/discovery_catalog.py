"""The CatalogSource of the suite: the discovery service's catalogue, followed over WatchCatalog.

Until the first catalogue arrives, and whenever discovery cannot be reached, the router routes on the
last catalogue it had (at first: the configuration alone); discovery is never on the path of a chat
request. Each message of the watch carries the whole catalogue: the view is rebuilt from it and
`generation` bumped, so the next request routes on it (a retired model is never chosen again, a new
free model can be).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from llmagg.common.logging import log_fields
from llmagg.common.secrets import Secret
from llmagg.discovery.v1 import discovery_pb2 as pb
from llmagg.discovery.watch import CatalogWatch
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


class DiscoveryCatalog(CatalogWatch):
    def __init__(
        self,
        address: str,
        configured: Mapping[str, Provider],
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
        token: Secret | None = None,
    ) -> None:
        super().__init__(address, self._received, log, retry_min_s, retry_max_s, token)
        self._configured = configured
        self._view = registry_view(configured)
        self.generation = 0
        self.revision = 0  # the discovery revision the view was built from (0: none yet)

    def view(self) -> CatalogView:
        return self._view

    def apply(self, catalog: pb.Catalog) -> None:
        self.received(catalog)

    def _received(self, catalog: pb.Catalog, changes: Sequence[pb.CatalogChange]) -> None:
        self._view = view_from(catalog, self._configured)
        self.revision = catalog.revision
        self.generation += 1
        for change in changes:
            log.info(
                "catalogue change: %s %s %s",
                pb.ChangeKind.Name(change.kind).removeprefix("CHANGE_KIND_").lower(),
                change.provider,
                change.model,
                extra=log_fields(detail=change.detail, source=change.source),
            )
