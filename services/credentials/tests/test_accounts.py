"""Provider accounts: validated whole writes, rotation, leases, outcome reports, config import."""

from __future__ import annotations

import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.secrets import Secret
from llmagg.registry import Account, ConfiguredAccount
from llmagg_credentials.domain.store import ACCOUNTS

from .helpers import KEY_A, KEY_B


async def test_an_added_account_is_stored_whole_with_its_key_and_listed_without_it(book, store):
    added = await book.add("groq", "g1", KEY_A, labels={"team": "a"}, priority=2, limits={"rpm": 30.0})
    assert (added.provider, added.alias, added.enabled, added.key_version, added.source) == (
        "groq",
        "g1",
        True,
        1,
        "cli",
    )
    assert added.limits == {"rpm": 30} and isinstance(added.limits["rpm"], int)
    document = await store.read(ACCOUNTS, "g1")
    assert document.data["api_key"] == KEY_A and document.version == 1
    [listed] = await book.list()
    assert listed.key == Secret(KEY_A) and KEY_A not in repr(listed)


@pytest.mark.parametrize(
    ("provider", "alias", "key", "params", "code"),
    [
        ("nope", "x", KEY_A, {}, "unknown_provider"),
        ("groq", "x", "  ", {}, "missing_api_key"),
        ("groq", "x", "two words", {}, "invalid_api_key"),
        ("groq", "bad alias!", KEY_A, {}, "invalid_alias"),
        ("cloudflare", "cf", KEY_A, {}, "missing_params"),
    ],
)
async def test_invalid_accounts_are_refused_and_nothing_is_written(book, store, provider, alias, key, params, code):
    with pytest.raises(ServiceError) as caught:
        await book.add(provider, alias, key, params=params)
    assert (caught.value.kind, caught.value.code) == (ErrorKind.INVALID_ARGUMENT, code)
    assert await store.names(ACCOUNTS) == []


async def test_limits_must_be_known_names_with_whole_counts(book, store):
    with pytest.raises(ServiceError, match="unknown limits") as caught:
        await book.add("groq", "g1", KEY_A, limits={"rps": 1})
    assert caught.value.code == "invalid_limits"
    with pytest.raises(ServiceError, match="positive integer"):
        await book.add("groq", "g1", KEY_A, limits={"rpm": 1.5})
    assert await store.names(ACCOUNTS) == []


async def test_a_duplicate_alias_is_already_exists_and_keeps_the_first(book, store):
    await book.add("groq", "g1", KEY_A)
    with pytest.raises(ServiceError) as caught:
        await book.add("groq", "g1", KEY_B)
    assert (caught.value.kind, caught.value.code) == (ErrorKind.ALREADY_EXISTS, "account_exists")
    assert (await store.read(ACCOUNTS, "g1")).data["api_key"] == KEY_A


async def test_an_alias_left_out_is_the_first_free_provider_number(book):
    assert (await book.add("groq", "", KEY_A)).alias == "groq-1"
    assert (await book.add("groq", "", KEY_B)).alias == "groq-2"


async def test_a_provider_without_auth_needs_no_key(book):
    assert (await book.add("local", "l1", "")).key is None


async def test_update_merges_labels_and_limits_and_disables_with_reason_and_time(book, clocks):
    await book.add("groq", "g1", KEY_A, labels={"team": "a", "env": "dev"}, limits={"rpm": 30})
    clocks.advance(60)
    updated = await book.update(
        "g1", enabled=False, labels={"env": "", "tier": "free"}, priority=5, limits={"rpd": 100}, remove_limits=["rpm"]
    )
    assert updated.labels == {"team": "a", "tier": "free"}
    assert updated.limits == {"rpd": 100} and updated.priority == 5
    assert (updated.enabled, updated.disabled_by, updated.disabled_reason) == (False, "admin", "disabled by an admin")
    assert updated.disabled_at == "2026-11-26T00:17:40Z" == updated.updated_at
    enabled = await book.update("g1", enabled=True)
    assert (enabled.enabled, enabled.disabled_at, enabled.disabled_by) == (True, "", "")


async def test_rotation_replaces_the_key_counts_versions_and_re_enables_a_rejected_account(book, store):
    await book.add("groq", "g1", KEY_A)
    await book.report("groq", "g1", accepted=False, status=401, key_version=1)
    rotated = await book.rotate("g1", KEY_B)
    assert (rotated.key, rotated.key_version, rotated.enabled) == (Secret(KEY_B), 2, True)
    assert (await store.read(ACCOUNTS, "g1")).data["api_key"] == KEY_B


async def test_rotation_keeps_an_account_an_admin_disabled_disabled(book):
    await book.add("groq", "g1", KEY_A, enabled=False)
    assert (await book.rotate("g1", KEY_B)).enabled is False


async def test_a_rejection_disables_with_reason_and_time_and_a_later_success_enables(book):
    await book.add("groq", "g1", KEY_A)
    disabled = await book.report("groq", "g1", accepted=False, status=403, key_version=1)
    assert (disabled.enabled, disabled.disabled_by) == (False, "upstream")
    assert disabled.disabled_reason == "the provider rejected the key (HTTP 403)" and disabled.disabled_at
    [listed] = await book.list()
    assert listed.enabled is False
    assert (await book.report("groq", "g1", accepted=True, status=0, key_version=1)).enabled is True


async def test_a_rejection_of_an_older_key_says_nothing_about_the_rotated_one(book):
    await book.add("groq", "g1", KEY_A)
    await book.rotate("g1", KEY_B)
    assert (await book.report("groq", "g1", accepted=False, status=401, key_version=1)).enabled is True


async def test_a_success_does_not_enable_an_account_an_admin_disabled(book):
    await book.add("groq", "g1", KEY_A, enabled=False)
    assert (await book.report("groq", "g1", accepted=True, status=0, key_version=1)).enabled is False


async def test_a_disabled_account_has_no_lease_except_a_probe_of_a_rejected_one(book):
    await book.add("groq", "g1", KEY_A)
    assert (await book.lease("groq", "g1")).key == Secret(KEY_A)
    await book.report("groq", "g1", accepted=False, status=401, key_version=1)
    with pytest.raises(ServiceError) as caught:
        await book.lease("groq", "g1")
    assert (caught.value.kind, caught.value.code) == (ErrorKind.FAILED_PRECONDITION, "account_disabled")
    assert (await book.lease("groq", "g1", probe=True)).key == Secret(KEY_A)
    await book.update("g1", enabled=False)
    with pytest.raises(ServiceError, match="disabled by an admin"):
        await book.lease("groq", "g1", probe=True)


async def test_a_lease_names_the_provider_too(book):
    await book.add("groq", "g1", KEY_A)
    with pytest.raises(ServiceError) as caught:
        await book.lease("cloudflare", "g1")
    assert caught.value.kind is ErrorKind.NOT_FOUND


async def test_delete_removes_it_and_a_second_delete_is_not_found(book, store):
    await book.add("groq", "g1", KEY_A)
    await book.list()  # cached listing
    await book.delete("g1")
    assert await store.names(ACCOUNTS) == [] and await book.list() == []
    with pytest.raises(ServiceError) as caught:
        await book.delete("g1")
    assert caught.value.code == "account_not_found"


async def test_the_listing_is_read_again_after_the_cache_time_and_sees_other_writers(book, store, clocks):
    await book.add("groq", "g1", KEY_A)
    assert [r.alias for r in await book.list()] == ["g1"]
    other = type(book)(store, book._providers)  # another replica writing to the same store
    await other.add("groq", "g2", KEY_B, priority=9)
    assert [r.alias for r in await book.list()] == ["g1"]  # within store_cache_s
    clocks.advance(2.1)
    assert [r.alias for r in await book.list()] == ["g2", "g1"]  # priority first


async def test_with_the_store_down_writes_fail_whole_and_the_last_listing_is_served(book, store, clocks):
    await book.add("groq", "g1", KEY_A)
    await book.list()
    store.available = False
    clocks.advance(5)
    assert [r.alias for r in await book.list()] == ["g1"]
    with pytest.raises(ServiceError) as caught:
        await book.add("groq", "g2", KEY_B)
    assert (caught.value.kind, caught.value.code) == (ErrorKind.UNAVAILABLE, "credential_store_unavailable")
    assert "nothing was changed" in caught.value.message
    store.available = True
    assert await store.names(ACCOUNTS) == ["g1"]


async def test_a_concurrent_change_is_retried_not_lost(book, store):
    await book.add("groq", "g1", KEY_A, labels={"a": "1"})
    real_write = store.write
    raced = []

    async def write_after_a_rival(kind, name, data, *, version):
        if not raced:
            raced.append(True)
            rival = dict((await store.read(kind, name)).data, labels={"a": "1", "rival": "yes"})
            await real_write(kind, name, rival, version=version)
        return await real_write(kind, name, data, version=version)  # stale the first time: a conflict

    store.write = write_after_a_rival
    updated = await book.update("g1", labels={"mine": "yes"})
    assert updated.labels == {"a": "1", "rival": "yes", "mine": "yes"}
    assert (await store.read(ACCOUNTS, "g1")).version == 3  # added, the rival's write, ours


def configured(alias: str, key: str | None, provider: str = "groq") -> ConfiguredAccount:
    return ConfiguredAccount(Account(provider, alias, "https://groq.example/v1"), Secret(key) if key else None)


async def test_config_import_is_idempotent_rotates_changed_keys_and_leaves_api_accounts(book, store):
    assert await book.import_configured([configured("c1", KEY_A), configured("c2", KEY_A)]) == (2, 0)
    assert await book.import_configured([configured("c1", KEY_A), configured("c2", KEY_A)]) == (0, 0)
    assert (await store.read(ACCOUNTS, "c1")).version == 1
    assert await book.import_configured([configured("c1", KEY_B)]) == (0, 1)
    assert (await book.get("c1")).key_version == 2
    await book.add("groq", "mine", KEY_A)
    assert await book.import_configured([configured("mine", KEY_B)]) == (0, 0)
    assert (await book.get("mine")).key == Secret(KEY_A)
    assert (await book.get("c1")).source == "config"


async def test_a_write_made_while_a_listing_is_read_is_not_lost_from_it(book, store, clocks):
    """A listing read from the store while this replica adds or deletes an account (the routers poll the list
    all the time) must not put back the world before that write for the cache time: `accounts add` then
    `accounts list` shows the new account, and a deleted one stays gone."""
    import asyncio

    await book.add("groq", "old", KEY_A)
    await book.add("groq", "gone", KEY_A)
    clocks.advance(5)
    reading, go_on = asyncio.Event(), asyncio.Event()
    read = store.read

    async def slow_read(kind, name):
        reading.set()
        await go_on.wait()
        return await read(kind, name)

    store.read = slow_read
    listing = asyncio.create_task(book.list())
    await reading.wait()
    store.read = read
    await book.add("groq", "new", KEY_B)
    await book.delete("gone")
    go_on.set()
    await listing
    assert [r.alias for r in await book.list()] == ["new", "old"]
