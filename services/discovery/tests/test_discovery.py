"""The discovery core: sources fail alone (hang, garbage), the store keeps the catalogue and its history,
watchers see every revision, a refresh runs sources now."""

from __future__ import annotations

import asyncio

import pytest

from llmagg.common.watch_streams import WatchStreams
from llmagg.discovery.v1 import discovery_pb2 as pb
from llmagg_discovery.adapters.sql_store import sqlite_store
from llmagg_discovery.domain.baseline import RegistrySource
from llmagg_discovery.domain.catalogue import Policy
from llmagg_discovery.domain.discovery import Discovery, UnknownSource
from llmagg_discovery.domain.ports import SourceError
from llmagg_discovery.domain.records import ChangeKind, ModelFacts, ModelKey, ModelState, SourceReport
from llmagg_discovery.domain.scheduler import source_backoff
from llmagg_discovery.servicer import DiscoveryServicer

from .helpers import REGISTRY, Clock, FakeAccounts, ScriptedSource

NEW = ModelKey("acme", "acme-new")


def listing(*models: str) -> SourceReport:
    return SourceReport(
        "models",
        models={ModelKey("acme", m): ModelFacts() for m in models},
        complete_for=frozenset({"acme"}),
        authoritative=True,
    )


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sources():
    return {name: ScriptedSource(name, timeout_s=0.5) for name in ("models", "community")}


@pytest.fixture
async def discovery(tmp_path, clock, sources):
    core = Discovery(
        Policy(grace_s=0, suspend_after=3),
        sqlite_store(tmp_path / "catalogue.sqlite3"),
        [RegistrySource(REGISTRY), *sources.values()],
        REGISTRY,
        FakeAccounts(),
        backoff=source_backoff(base_s=60, max_s=60),
        clock=clock,
        start_delay_s=3600,  # scheduled runs wait: the tests run sources with refresh()
    )
    await core.start()
    yield core
    await core.stop()


def states(core: Discovery) -> dict[str, ModelState]:
    return {f"{m.provider}/{m.model}": m.state for m in core.snapshot().models}


async def test_a_refresh_applies_what_the_source_found_and_the_history_keeps_it(discovery, sources, clock):
    sources["models"].next = listing("acme-large", "acme-new")
    changes = await discovery.refresh(["models"])
    assert [(c.kind, c.model) for c in changes] == [
        (ChangeKind.RETIRED, "acme-small"),  # grace 0: missing is retired at once
        (ChangeKind.ADDED, "acme-new"),
    ]
    assert all(c.id for c in changes)
    history = await discovery.changes(clock.now - 60, None, 100)
    assert [(c.kind, c.model) for c in history] == [(ChangeKind.ADDED, "acme-new"), (ChangeKind.RETIRED, "acme-small")]
    assert await discovery.changes(clock.now - 60, "gone", 100) == []


async def test_a_hanging_source_times_out_alone_and_the_catalogue_stays(discovery, sources):
    before = states(discovery)
    sources["community"].hang = True
    sources["models"].next = listing("acme-large", "acme-small", "acme-new")
    changes = await discovery.refresh()
    assert [(c.kind, c.model) for c in changes] == [(ChangeKind.ADDED, "acme-new")]
    status = {s.name: s for s in discovery.statuses()}
    assert (status["community"].last_error, status["community"].consecutive_failures) == ("timed out", 1)
    assert status["models"].last_error == "" and status["models"].last_success_at
    assert states(discovery) == {**before, "acme/acme-new": ModelState.ACTIVE}


async def test_a_source_returning_garbage_changes_nothing_and_its_error_names_no_key(discovery, sources):
    before = discovery.snapshot()
    sources["models"].next = SourceError("the answer (HTTP 200) is not JSON; Bearer sk-test-FAKE-garbage-1234567")
    assert await discovery.refresh(["models"]) == []
    assert discovery.snapshot() is before
    error = {s.name: s for s in discovery.statuses()}["models"].last_error
    assert "not JSON" in error and "sk-test-FAKE" not in error


async def test_the_catalogue_and_history_survive_a_restart(tmp_path, discovery, sources, clock):
    sources["models"].next = listing("acme-large", "acme-small", "acme-new")
    await discovery.refresh(["models"])
    await discovery.stop()
    again = Discovery(
        Policy(grace_s=0), sqlite_store(tmp_path / "catalogue.sqlite3"), [RegistrySource(REGISTRY)], REGISTRY,
        FakeAccounts(), clock=clock,
    )  # fmt: skip
    await again.start()
    try:
        assert states(again)["acme/acme-new"] is ModelState.ACTIVE
        assert again.snapshot().revision == discovery.snapshot().revision
        assert [c.kind for c in await again.changes(0, "acme", 10)] == [ChangeKind.ADDED]
    finally:
        await again.stop()


async def test_a_watcher_gets_the_catalogue_then_each_revision_with_its_changes(discovery, sources):
    watch = discovery.watch()
    first, changes = await anext(watch)
    assert changes == [] and first.revision == discovery.snapshot().revision
    waiting = asyncio.create_task(anext(watch))
    await asyncio.sleep(0)
    assert not waiting.done()
    sources["models"].next = listing("acme-large", "acme-small", "acme-new")
    await discovery.refresh(["models"])
    second, changes = await asyncio.wait_for(waiting, 5)
    assert second.revision > first.revision and [c.model for c in changes] == ["acme-new"]
    await watch.aclose()


async def test_an_unknown_source_is_refused_by_name(discovery):
    with pytest.raises(UnknownSource, match=r"unknown sources \['nope'\]; known: registry, models, community"):
        await discovery.refresh(["nope"])


async def test_metrics_count_entries_by_state_and_source_failures(discovery, sources):
    from prometheus_client import CollectorRegistry, generate_latest

    from llmagg_discovery.adapters.prometheus_metrics import DiscoveryCollector

    registry = CollectorRegistry()
    registry.register(DiscoveryCollector(discovery))
    sources["community"].next = SourceError("unreachable")
    await discovery.refresh(["community"])
    text = generate_latest(registry).decode()
    assert 'llmagg_discovery_models{state="active"} 2.0' in text
    assert 'llmagg_discovery_models{state="retired"} 1.0' in text  # the retired provider's model
    assert 'llmagg_discovery_source_consecutive_failures{source="community"} 1.0' in text


async def test_a_catalogue_watch_gets_the_catalogue_then_ends_when_the_service_stops(discovery):
    """Else the service's stop would hold it for the whole grace period; the router watches again elsewhere."""
    streams = WatchStreams()
    watch = DiscoveryServicer(discovery, streams).WatchCatalog(pb.WatchCatalogRequest(), None)
    first = await asyncio.wait_for(anext(watch), 5)
    assert "acme-small" in {m.model for m in first.catalog.models}
    waiting = asyncio.create_task(anext(watch))
    await streams.stop(grace_s=30)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 5)
