"""Fixtures for the router's unit tests: the domain wired to in-process ports and a scripted upstream."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from llmagg_router.adapters.config_keys import ConfigKeySource
from llmagg_router.adapters.memory_health import MemoryHealthStore
from llmagg_router.adapters.prometheus_metrics import PrometheusRouterMetrics
from llmagg_router.adapters.unmetered_quota import UnmeteredQuota
from llmagg_router.domain.affinity import Affinity
from llmagg_router.domain.config import RoutingConfig
from llmagg_router.domain.limits import RouterLimits
from llmagg_router.domain.ports import QuotaLedger, RouterPorts
from llmagg_router.domain.resolver import Resolver
from llmagg_router.domain.router import Router

from .helpers import FakeClock, ScriptedUpstream, make_config


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock) -> MemoryHealthStore:
    return MemoryHealthStore(failure_threshold=2, open_for_s=30, clock=clock)


@pytest.fixture
def upstream() -> ScriptedUpstream:
    return ScriptedUpstream()


@pytest.fixture
def make_resolver(health, clock):
    def build(config: RoutingConfig | None = None) -> Resolver:
        config = config or make_config()
        return Resolver(config, ConfigKeySource(config.accounts, clock=clock), health, {"openai"})

    return build


@pytest.fixture
def metrics() -> PrometheusRouterMetrics:
    return PrometheusRouterMetrics(CollectorRegistry())


@pytest.fixture
def make_router(health, upstream, clock, metrics):
    def build(
        config: RoutingConfig | None = None,
        quota: QuotaLedger | None = None,
        trace_content: bool = False,
        affinity: Affinity | None = None,
        **limits: Any,
    ) -> Router:
        config = config or make_config()
        keys = ConfigKeySource(config.accounts, clock=clock)
        ports = RouterPorts(keys=keys, quota=quota or UnmeteredQuota(), health=health, metrics=metrics)
        resolver = Resolver(config, keys, health, {"openai"})
        return Router(
            resolver,
            ports,
            {"openai": upstream},
            RouterLimits(**limits),
            clock=clock,
            trace_content=trace_content,
            affinity=affinity,
            sleep=clock.sleep,
        )

    return build
