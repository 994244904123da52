"""Limits from the discovery service's catalogue (RATELIMIT_CATALOG=discovery): followed over
WatchCatalog and handed to the limit book, so a limit discovery learns (a provider's model list, the
community list) is enforced without a restart. While discovery cannot be reached the last catalogue's
limits stay in force (the `discovery` health name says so)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from llmagg.common.secrets import Secret
from llmagg.discovery.v1 import discovery_pb2 as pb
from llmagg.discovery.watch import CatalogWatch
from llmagg_ratelimit.domain.limits import LimitBook

log = logging.getLogger(__name__)


def limits_of(catalog: pb.Catalog) -> tuple[dict[str, dict[str, float]], dict[tuple[str, str], dict[str, float]]]:
    """Account-wide limits per provider and limits per (provider, model), as the catalogue has them."""
    providers = {provider.id: dict(provider.limits) for provider in catalog.providers if provider.limits}
    models = {(model.provider, model.model): dict(model.limits) for model in catalog.models if model.limits}
    return providers, models


class DiscoveryLimits(CatalogWatch):
    def __init__(self, address: str, book: LimitBook, token: Secret | None = None) -> None:
        super().__init__(address, self._received, log, token=token)
        self._book = book

    def _received(self, catalog: pb.Catalog, changes: Sequence[pb.CatalogChange]) -> None:
        self._book.set_discovered(*limits_of(catalog))
