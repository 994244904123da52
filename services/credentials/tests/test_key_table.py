"""The keys as every Envoy checks them: the table from the stored keys, kept current from the store's
change note (a change on any replica), served by ECDS with a version per table."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from envoy.config.core.v3 import extension_pb2
from envoy.extensions.common.matching.v3 import extension_matcher_pb2
from envoy.extensions.filters.http.basic_auth.v3 import basic_auth_pb2
from envoy.extensions.filters.http.lua.v3 import lua_pb2
from envoy.service.discovery.v3 import discovery_pb2

from llmagg import gateway_keys
from llmagg.common.caller_auth import GATEWAY, calling_peer
from llmagg.common.secrets import Secret
from llmagg.common.watch_streams import WatchStreams
from llmagg.gateway_keys import DENY_ALL, ENV_ADMIN_ID, HASHES_FILTER, ROUTING_FILTER, KeyTable, sha_hash
from llmagg_credentials.adapters.memory_store import MemoryStore
from llmagg_credentials.domain.client_keys import ClientKeys
from llmagg_credentials.domain.key_table import KeyTableSource, key_table
from llmagg_credentials.domain.store import CLIENT_KEYS
from llmagg_credentials.xds_servicer import TYPE_URL, ExtensionConfigServicer

from .conftest import ENV_ADMIN


async def test_the_table_holds_usable_keys_hashes_admin_ids_keys_stored_without_a_hash_and_revoked_ids(keys, store):
    client, client_secret = await keys.create("c", "client")
    admin, admin_secret = await keys.create("a", "admin")
    revoked, _ = await keys.create("r", "client")
    await keys.revoke(revoked.id)
    legacy, _ = await keys.create("old", "admin")
    document = await store.read(CLIENT_KEYS, legacy.id)
    await store.write(CLIENT_KEYS, legacy.id, {**document.data, "envoy_hash": ""}, version=document.version)

    table = key_table(await keys.list(), keys.env_admin_hash)
    assert table.hashes == tuple(
        sorted(
            [
                (client.id, sha_hash(client_secret.reveal())),
                (admin.id, sha_hash(admin_secret.reveal())),
                (ENV_ADMIN_ID, sha_hash(ENV_ADMIN)),
            ]
        )
    )
    assert table.admin_ids == {admin.id, legacy.id, ENV_ADMIN_ID}
    assert table.legacy_ids == {legacy.id}
    assert table.revoked_ids == {revoked.id}
    # Envoy decides these itself; another sk-llmagg- id goes to ext_authz (a key newer than the table).
    assert table.known_ids == {client.id, admin.id, ENV_ADMIN_ID, revoked.id}


async def test_a_short_environment_admin_key_stays_out_of_envoys_table_and_ext_authz_checks_it(store):
    """An operator-chosen key may be weak: no unsalted hash of it goes to every Envoy."""
    short = "sk-test-FAKE-short-admin"
    keys = ClientKeys(store, env_admin_key=Secret(short))
    source = KeyTableSource(keys)
    await source.refresh()
    assert source.table.hashes == ()
    assert source.table.legacy_ids == {ENV_ADMIN_ID} and source.table.admin_ids == {ENV_ADMIN_ID}
    assert sha_hash(short) not in str(gateway_keys.filters(source.table))
    assert (await keys.verify(short)).client_id == ENV_ADMIN_ID  # ext_authz's check


async def test_an_environment_admin_key_of_32_characters_or_more_is_hashed_for_envoy(store):
    long_key = "k" * 32
    keys = ClientKeys(store, env_admin_key=Secret(long_key))
    source = KeyTableSource(keys)
    await source.refresh()
    assert source.table.hashes == ((ENV_ADMIN_ID, sha_hash(long_key)),)
    assert source.table.legacy_ids == frozenset() and source.table.admin_ids == {ENV_ADMIN_ID}


def test_a_version_names_the_tables_content():
    one = KeyTable(hashes=(("a" * 12, "{SHA}x"),))
    assert one.version == KeyTable(hashes=(("a" * 12, "{SHA}x"),)).version
    assert len({one.version, DENY_ALL.version, replace(one, admin_ids=frozenset({"a" * 12})).version}) == 3


async def test_a_key_revoked_on_another_replica_leaves_this_replicas_table_at_the_next_poll(keys, store):
    record, _ = await keys.create("c", "client")
    source = KeyTableSource(keys)
    assert await source.refresh() is True
    assert [user for user, _ in source.table.hashes] == sorted([ENV_ADMIN_ID, record.id])
    assert await source.refresh() is False  # the note did not move: one read, no reread

    other_replica = ClientKeys(store)
    await other_replica.revoke(record.id)
    assert await source.refresh() is True
    assert [user for user, _ in source.table.hashes] == [ENV_ADMIN_ID]


async def test_a_key_stored_without_a_hash_gets_one_at_its_first_verification(keys, store):
    record, secret = await keys.create("old", "client")
    document = await store.read(CLIENT_KEYS, record.id)
    await store.write(CLIENT_KEYS, record.id, {**document.data, "envoy_hash": ""}, version=document.version)
    source = KeyTableSource(keys)
    await source.refresh()
    assert source.table.legacy_ids == {record.id}

    assert (await keys.verify(secret.reveal())).client_id == record.id
    assert (await store.read(CLIENT_KEYS, record.id)).data["envoy_hash"] == sha_hash(secret.reveal())
    assert await source.refresh() is True
    assert source.table.legacy_ids == frozenset() and (record.id, sha_hash(secret.reveal())) in source.table.hashes


class _Stream:
    """Envoy's side of one ECDS stream."""

    def __init__(self, servicer: ExtensionConfigServicer) -> None:
        calling_peer.set(GATEWAY)  # what the caller check (caller_auth) sets for the gateway's token
        self.requests: asyncio.Queue = asyncio.Queue()
        self._responses = servicer.StreamExtensionConfigs(self._requests(), None)

    async def _requests(self):
        while (request := await self.requests.get()) is not None:
            yield request

    def ask(self, names=(), version="", nonce="", rejected=False) -> None:
        request = discovery_pb2.DiscoveryRequest(
            resource_names=list(names), version_info=version, response_nonce=nonce, type_url=TYPE_URL
        )
        if rejected:
            request.error_detail.message = "rejected"
        self.requests.put_nowait(request)

    async def answer(self) -> discovery_pb2.DiscoveryResponse:
        return await asyncio.wait_for(anext(self._responses), 5)

    async def no_answer(self) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._pending()), 0.3)

    async def _pending(self):
        self._next = getattr(self, "_next", None) or asyncio.ensure_future(anext(self._responses))
        return await self._next


def _filters(response) -> dict:
    configs = {}
    for resource in response.resources:
        config = extension_pb2.TypedExtensionConfig()
        resource.Unpack(config)
        configs[config.name] = config
    return configs


async def test_ecds_answers_what_envoy_asks_pushes_each_new_table_and_does_not_resend_an_acknowledged_one(store):
    keys = ClientKeys(store, env_admin_key=Secret(ENV_ADMIN))
    record, secret = await keys.create("c", "admin")
    source = KeyTableSource(keys)
    await source.refresh()
    stream = _Stream(ExtensionConfigServicer(source, WatchStreams()))

    stream.ask([HASHES_FILTER, ROUTING_FILTER])
    first = await stream.answer()
    assert first.type_url == TYPE_URL and first.version_info == source.table.version
    configs = _filters(first)
    assert sorted(configs) == sorted([HASHES_FILTER, ROUTING_FILTER])
    matcher = extension_matcher_pb2.ExtensionWithMatcher()
    configs[HASHES_FILTER].typed_config.Unpack(matcher)
    basic = basic_auth_pb2.BasicAuth()
    matcher.extension_config.typed_config.Unpack(basic)
    assert basic.users.inline_string.splitlines() == sorted(
        [f"{ENV_ADMIN_ID}:{sha_hash(ENV_ADMIN)}", f"{record.id}:{sha_hash(secret.reveal())}"]
    )
    assert secret.reveal() not in str(first)
    lua = lua_pb2.Lua()
    configs[ROUTING_FILTER].typed_config.Unpack(lua)
    assert f'["{record.id}"] = true' in lua.default_source_code.inline_string.splitlines()[1]  # ADMIN_IDS

    stream.ask([HASHES_FILTER, ROUTING_FILTER], version=first.version_info, nonce=first.nonce)  # the ACK
    await stream.no_answer()

    await keys.revoke(record.id)
    await source.refresh()
    # A new table comes in two steps: its hashes, then (once they are acknowledged) the key routing.
    hashes = await stream._pending()
    stream._next = None  # taken
    assert hashes.version_info == f"{source.table.version}-hashes" and hashes.nonce != first.nonce
    assert list(_filters(hashes)) == [HASHES_FILTER]
    matcher.Clear()
    _filters(hashes)[HASHES_FILTER].typed_config.Unpack(matcher)
    basic.Clear()
    matcher.extension_config.typed_config.Unpack(basic)
    assert record.id not in basic.users.inline_string
    await stream.no_answer()  # nothing more before Envoy has them
    stream.ask([HASHES_FILTER, ROUTING_FILTER], version=hashes.version_info, nonce=hashes.nonce)
    pushed = await stream._pending()  # the answer the wait above was already waiting for
    stream._next = None
    assert pushed.version_info == source.table.version != first.version_info
    assert sorted(_filters(pushed)) == sorted([HASHES_FILTER, ROUTING_FILTER])
    stream.ask([HASHES_FILTER, ROUTING_FILTER], version=pushed.version_info, nonce=pushed.nonce)  # the ACK
    await stream.no_answer()
    stream.requests.put_nowait(None)


async def test_ecds_answers_only_the_filters_asked_for(keys):
    source = KeyTableSource(keys)
    await source.refresh()
    stream = _Stream(ExtensionConfigServicer(source, WatchStreams()))
    stream.ask([ROUTING_FILTER])
    assert list(_filters(await stream.answer())) == [ROUTING_FILTER]
    stream.requests.put_nowait(None)


async def test_an_ecds_stream_ends_when_the_service_stops(keys):
    """Else the service's stop would hold it for the whole grace period; Envoy opens it again elsewhere."""
    source = KeyTableSource(keys)
    await source.refresh()
    streams = WatchStreams()
    stream = _Stream(ExtensionConfigServicer(source, streams))
    stream.ask([ROUTING_FILTER])
    await stream.answer()
    await streams.stop(grace_s=30)
    with pytest.raises(StopAsyncIteration):
        await stream.answer()  # Envoy sent nothing more: the stream ended all the same


class _SlowFirstList(ClientKeys):
    """Keys whose first listing (once armed) is held until released: an old read finishing late."""

    def __init__(self, store) -> None:
        super().__init__(store, env_admin_key=Secret(ENV_ADMIN))
        self.armed, self.listed, self.release = False, asyncio.Event(), asyncio.Event()

    async def list(self):
        records = await super().list()
        if self.armed:
            self.armed = False
            self.listed.set()
            await self.release.wait()
        return records


async def test_a_read_that_started_before_a_revocation_never_rolls_the_table_back_after_publish():
    keys = _SlowFirstList(MemoryStore())
    record, _ = await keys.create("c", "client")
    source = KeyTableSource(keys)
    await source.refresh()
    await keys.create("another", "client")  # the note moves: the poll rereads
    keys.armed = True
    poll = asyncio.create_task(source.refresh())
    await keys.listed.wait()  # the poll listed the keys before the revocation and is still reading

    await keys.revoke(record.id)
    publish = asyncio.create_task(source.publish())
    for _ in range(50):  # let publish run as far as it can on its own (in-memory store: no I/O)
        await asyncio.sleep(0)
    keys.release.set()
    await asyncio.gather(poll, publish)

    assert record.id in source.table.revoked_ids
    assert record.id not in source.table.known_ids - source.table.revoked_ids
