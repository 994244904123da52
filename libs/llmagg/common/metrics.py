"""Prometheus metrics: every service serves them on its metrics port (the service table names it).

Label values come only from bounded sets (method names the service registered, status codes,
provider and model ids of the registry): nothing a client sends becomes a label.
"""

from __future__ import annotations

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

# Seconds: from a millisecond to the length of a long stream.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class RpcMetrics:
    """What every gRPC service reports of the RPCs it serves."""

    def __init__(self, service: str, registry: CollectorRegistry = REGISTRY) -> None:
        self._service = service
        self._handled = Counter(
            "llmagg_grpc_server_handled",
            "RPCs completed, by method and gRPC status code.",
            ["service", "method", "code"],
            registry=registry,
        )
        self._seconds = Histogram(
            "llmagg_grpc_server_handling_seconds",
            "Time from receiving an RPC to its last message (a stream's whole length).",
            ["service", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, grpc.StatusCode], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        children = self._children.get((method, code))
        if children is None:
            children = self._children[(method, code)] = (
                self._handled.labels(self._service, method, code.name),
                self._seconds.labels(self._service, method),
            )
        handled, duration = children
        handled.inc()
        duration.observe(seconds)


def serve_metrics(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> int:
    """Serve /metrics on a thread; the port it listens on (a free one when `port` is 0)."""
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server.server_port
