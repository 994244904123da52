"""The router's metrics in Prometheus: GenAI client metrics where the conventions name them, ours beside.

Cooldowns and open circuits are read from the HealthStore when Prometheus scrapes, not counted twice.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from llmagg.common.metrics import LATENCY_BUCKETS
from llmagg_router.domain.ports import Usage

OTHER_MODEL = "other"  # a model id the registry does not list (passed through as the client gave it)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)


class PrometheusRouterMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self._requests = Counter(
            "llmagg_router_requests",
            "Requests the router finished, by operation and outcome.",
            ["operation", "outcome"],
            registry=registry,
        )
        self._meta_choices = Counter(
            "llmagg_router_meta_choices",
            "Models the meta-controller put first for `auto`, by task profile, model and reason.",
            ["profile", "model", "reason"],
            registry=registry,
        )
        self._request_attempts = Histogram(
            "llmagg_router_request_attempts",
            "Upstream attempts a request took.",
            ["operation"],
            buckets=(1, 2, 3, 4, 5, 6, 8, 10),
            registry=registry,
        )
        self._attempts = Counter(
            "llmagg_router_attempts",
            "Upstream attempts, by provider, model and outcome (ok, a failure class, abandoned, timeout).",
            ["operation", "provider", "model", "outcome"],
            registry=registry,
        )
        self._fallbacks = Counter(
            "llmagg_router_fallbacks",
            "Attempts that failed and made the router try the next candidate, by reason.",
            ["reason"],
            registry=registry,
        )
        self._duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration: one upstream attempt, start to last byte.",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._first_chunk = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time from sending an attempt to its first content.",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per attempt, by type (input, output).",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        # Each metric's children by their labels (bounded as the labels are: the registry's model ids).
        self._children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """`metric.labels(*labels)`, looked up once: `labels()` checks and locks on every call."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def attempt_ended(
        self,
        operation: str,
        provider: str,
        model: str | None,
        outcome: str,
        seconds: float,
        first_chunk_s: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        model = model or OTHER_MODEL
        child = self._child
        child(self._attempts, operation, provider, model, outcome).inc()
        error_type = "" if outcome == "ok" else outcome
        child(self._duration, operation, provider, model, error_type).observe(seconds)
        if outcome not in ("ok", "abandoned", "client"):
            child(self._fallbacks, outcome).inc()
        if first_chunk_s is not None:
            child(self._first_chunk, operation, provider, model).observe(first_chunk_s)
        if usage is not None:
            child(self._tokens, operation, provider, model, "input").observe(usage.prompt_tokens)
            child(self._tokens, operation, provider, model, "output").observe(usage.completion_tokens)

    def meta_choice(self, profile: str, model: str, reason: str) -> None:
        self._child(self._meta_choices, profile, model, reason).inc()

    def request_ended(self, operation: str, outcome: str, seconds: float, attempts: int) -> None:
        self._child(self._requests, operation, outcome).inc()
        self._child(self._request_attempts, operation).observe(attempts)


class HealthCollector(Collector):
    """Cooldowns and open circuits as gauges, read from the HealthStore at scrape time."""

    def __init__(self, health: object) -> None:
        self._health = health

    def collect(self):
        snapshot = self._health.snapshot()
        cooling = GaugeMetricFamily(
            "llmagg_router_cooling_accounts", "Accounts cooling down now, by provider.", labels=["provider"]
        )
        for provider, count in sorted(snapshot.cooling_by_provider.items()):
            cooling.add_metric([provider], count)
        circuits = GaugeMetricFamily(
            "llmagg_router_open_circuits", "Circuits not closed now, by kind and state.", labels=["kind", "state"]
        )
        for (kind, state), count in sorted(snapshot.circuits_by_state.items()):
            circuits.add_metric([kind, state], count)
        yield cooling
        yield circuits
