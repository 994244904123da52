"""Client API keys: shown once, stored as a salted hash, verified through a short-lived verdict cache."""

from __future__ import annotations

import hashlib
import json

import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.gateway_keys import sha_hash
from llmagg_credentials.domain.client_keys import ENV_ADMIN_ID, INVALID, MISSING, PREFIX, UNAVAILABLE, Verdict
from llmagg_credentials.domain.store import CLIENT_KEYS

from .conftest import ENV_ADMIN


async def test_a_new_key_is_shown_once_and_stored_only_as_a_salted_hash(keys, store):
    record, secret = await keys.create("laptop", "client")
    assert secret.reveal().startswith(f"sk-llmagg-{record.id}-")
    stored = (await store.read(CLIENT_KEYS, record.id)).data
    dumped = json.dumps(stored)
    secret_part = secret.reveal().removeprefix(f"sk-llmagg-{record.id}-")  # it may hold dashes itself
    assert secret.reveal() not in dumped and secret_part not in dumped
    assert stored["digest"] != hashlib.sha256(secret.reveal().encode()).hexdigest()  # salted, not a bare hash
    assert set(stored) == {"id", "name", "scope", "salt", "digest", "created_at", "revoked_at", "envoy_hash"}
    # What every Envoy checks the key against: a hash of a 192-bit random secret, not the key.
    assert stored["envoy_hash"] == sha_hash(secret.reveal()) and stored["envoy_hash"].startswith("{SHA}")
    assert await keys.verify(secret.reveal()) == Verdict(client_id=record.id, scope="client")


async def test_two_keys_of_the_same_name_get_different_salts_and_ids(keys, store):
    first, _ = await keys.create("same", "client")
    second, _ = await keys.create("same", "client")
    assert first.id != second.id and first.salt != second.salt


@pytest.mark.parametrize(("scope", "name"), [("root", "x"), ("client", "x" * 101), ("client", "bad\nname")])
async def test_bad_scopes_and_names_are_invalid_argument(keys, store, scope, name):
    with pytest.raises(ServiceError) as caught:
        await keys.create(name, scope)
    assert caught.value.kind is ErrorKind.INVALID_ARGUMENT
    assert await store.names(CLIENT_KEYS) == []


async def test_missing_malformed_unknown_and_tampered_keys_are_refused(keys):
    record, secret = await keys.create("k", "client")
    assert await keys.verify("") is MISSING
    assert await keys.verify("sk-not-ours") is INVALID
    assert await keys.verify(f"{PREFIX}0123456789ab-FAKE") is INVALID  # a well-formed id nobody has
    assert await keys.verify(secret.reveal() + "x") is INVALID
    assert await keys.verify(secret.reveal().replace(record.id, "f" * 12)) is INVALID


async def test_the_environment_admin_key_is_an_admin_that_is_never_stored(keys, store):
    assert await keys.verify(ENV_ADMIN) == Verdict(client_id=ENV_ADMIN_ID, scope="admin")
    assert await store.names(CLIENT_KEYS) == []
    assert await keys.has_admin()


async def test_a_revoked_key_is_refused_at_once_here_and_within_the_ttl_elsewhere(keys, store, clocks):
    record, secret = await keys.create("k", "client")
    other = type(keys)(store, cache_ttl_s=10.0, clock=clocks.wall, monotonic=clocks.monotonic)  # another replica
    assert (await other.verify(secret.reveal())).ok
    assert (await keys.verify(secret.reveal())).ok
    revoked = await keys.revoke(record.id)
    assert revoked.revoked and revoked.revoked_at
    assert await keys.verify(secret.reveal()) is INVALID  # this replica forgot its verdict
    assert (await other.verify(secret.reveal())).ok  # the other still trusts its cached verdict...
    clocks.advance(10.1)
    assert await other.verify(secret.reveal()) is INVALID  # ...for at most the TTL
    assert (await keys.revoke(record.id)).revoked_at == revoked.revoked_at  # revoking again changes nothing


async def test_verdicts_are_cached_so_a_check_costs_no_store_read(keys, store):
    _, secret = await keys.create("k", "client")
    reads = []
    real_read = store.read

    async def counting(kind, name):
        reads.append(name)
        return await real_read(kind, name)

    store.read = counting
    for _ in range(5):
        assert (await keys.verify(secret.reveal())).ok
    assert len(reads) == 1


async def test_with_the_store_down_known_keys_still_pass_and_unknown_ones_are_unavailable(keys, store, clocks):
    record, secret = await keys.create("k", "client")
    _, other_secret = await keys.create("k2", "client")
    store.available = False
    clocks.advance(60)  # every cached verdict has expired
    assert (await keys.verify(secret.reveal())).ok  # checked against the record last read (at creation)
    assert await keys.verify(f"{PREFIX}0123456789ab-FAKE-unseen") is UNAVAILABLE
    with pytest.raises(ServiceError) as caught:
        await keys.revoke(record.id)
    assert caught.value.code == "credential_store_unavailable"
    assert (await keys.verify(other_secret.reveal())).ok


async def test_unknown_ids_to_revoke_are_not_found(keys):
    for key_id in ("0123456789ab", "../etc"):
        with pytest.raises(ServiceError) as caught:
            await keys.revoke(key_id)
        assert caught.value.code == "key_not_found"
