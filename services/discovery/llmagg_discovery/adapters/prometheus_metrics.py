"""Discovery's metrics, read from the core at each scrape: the catalogue by state, each source's health."""

from __future__ import annotations

from collections import Counter

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from llmagg_discovery.domain.discovery import Discovery
from llmagg_discovery.domain.records import ModelState


class DiscoveryCollector(Collector):
    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery

    def collect(self):
        snapshot = self._discovery.snapshot()
        models = GaugeMetricFamily("llmagg_discovery_models", "Catalogue entries by state.", labels=["state"])
        counts = Counter(model.state for model in snapshot.models)
        for state in ModelState:
            models.add_metric([state.value], counts.get(state, 0))
        yield models
        yield GaugeMetricFamily(
            "llmagg_discovery_catalogue_revision", "The catalogue's revision.", value=snapshot.revision
        )
        failures = GaugeMetricFamily(
            "llmagg_discovery_source_consecutive_failures", "Failed runs in a row, per source.", labels=["source"]
        )
        success = GaugeMetricFamily(
            "llmagg_discovery_source_last_success_timestamp_seconds",
            "When each source last ran well.",
            labels=["source"],
        )
        for status in self._discovery.statuses():
            failures.add_metric([status.name], status.consecutive_failures)
            success.add_metric([status.name], status.last_success_at)
        yield failures
        yield success
