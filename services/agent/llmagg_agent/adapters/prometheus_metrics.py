"""The agent's metrics in Prometheus (served on its metrics port with the gRPC ones every service has)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from llmagg.common.metrics import LATENCY_BUCKETS

STEP_BUCKETS = (1, 2, 3, 5, 8, 13, 21, 34, 55)


class PrometheusAgentMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._runs = Counter(
            "llmagg_agent_runs",
            "Agent runs (an invoke or a resume) by how they ended.",
            ["status"],
            registry=registry,
        )
        self._run_seconds = Histogram(
            "llmagg_agent_run_seconds", "How long a run took.", ["status"], buckets=LATENCY_BUCKETS, registry=registry
        )
        self._run_steps = Histogram(
            "llmagg_agent_run_steps", "Model calls a run made.", buckets=STEP_BUCKETS, registry=registry
        )
        self._model_calls = Counter(
            "llmagg_agent_model_calls", "Model calls through the router, by outcome.", ["outcome"], registry=registry
        )
        self._model_seconds = Histogram(
            "llmagg_agent_model_call_seconds", "How long a model call took.", buckets=LATENCY_BUCKETS, registry=registry
        )
        self._tool_calls = Counter(
            "llmagg_agent_tool_calls",
            "Tool calls the models made, by tool and outcome (ok, invalid, refused, failed, asked).",
            ["tool", "outcome"],
            registry=registry,
        )

    def run_ended(self, status: str, steps: int, seconds: float) -> None:
        self._runs.labels(status).inc()
        self._run_seconds.labels(status).observe(seconds)
        self._run_steps.observe(steps)

    def model_call_ended(self, outcome: str, seconds: float) -> None:
        self._model_calls.labels(outcome).inc()
        self._model_seconds.observe(seconds)

    def tool_call_ended(self, tool: str, outcome: str) -> None:
        self._tool_calls.labels(tool, outcome).inc()
