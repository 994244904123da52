"""The keys as every Envoy checks them (llmagg.gateway_keys.KeyTable), kept current for the xDS server.

Each replica polls the store's change note for client keys (one read every `poll_s`, 0.25 s) and rereads
every key when it moved, and at least every `reread_s` in case a writer died between writing a key
and bumping the note. So a key created or revoked on any replica reaches this replica's table, and so
every Envoy it serves, within about `poll_s` plus one reread. While the store is down the last table
stays (revocations wait for the store, as they do for ext_authz's cache).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from llmagg.common.errors import ServiceError
from llmagg.gateway_keys import DENY_ALL, ENV_ADMIN_ID, KeyTable
from llmagg_credentials.domain.client_keys import ADMIN, ClientKeys
from llmagg_credentials.domain.records import ClientKeyRecord
from llmagg_credentials.domain.store import StoreUnavailable

log = logging.getLogger(__name__)


def key_table(
    records: Iterable[ClientKeyRecord], env_admin_hash: str = "", env_admin_by_ext_authz: bool = False
) -> KeyTable:
    """The table of the keys: the usable ones' ids with hashes, admin ids, the ids stored without a hash
    (ext_authz checks those until their first verification records one), and the revoked ids. The
    environment's admin key is there by its hash, or (too short to hash: client_keys.py) as an id
    ext_authz checks."""
    records = list(records)
    usable = [r for r in records if not r.revoked]
    hashes = [(r.id, r.envoy_hash) for r in usable if r.envoy_hash]
    admin_ids = {r.id for r in usable if r.scope == ADMIN}
    legacy_ids = {r.id for r in usable if not r.envoy_hash}
    if env_admin_hash:
        hashes.append((ENV_ADMIN_ID, env_admin_hash))
        admin_ids.add(ENV_ADMIN_ID)
    elif env_admin_by_ext_authz:
        legacy_ids.add(ENV_ADMIN_ID)
        admin_ids.add(ENV_ADMIN_ID)
    return KeyTable(
        hashes=tuple(sorted(hashes)),
        admin_ids=frozenset(admin_ids),
        legacy_ids=frozenset(legacy_ids),
        revoked_ids=frozenset(r.id for r in records if r.revoked),
    )


class KeyTableSource:
    """The current KeyTable (DENY_ALL until the store was first read), and a wait for the next one."""

    def __init__(
        self,
        keys: ClientKeys,
        *,
        poll_s: float = 0.25,
        reread_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._poll_s = poll_s
        self._reread_s = reread_s
        self._monotonic = monotonic
        self._note: int | None = None
        self._read_at = float("-inf")
        self.table = DENY_ALL
        self.loaded = False
        self._changed = asyncio.Condition()
        # One read at a time: a read that started earlier (the poll's) can never finish last and put an
        # older table back.
        self._reading = asyncio.Lock()
        self._applied: dict[object, str] = {}  # per gateway stream: the table version it acknowledged

    async def refresh(self, *, force: bool = False) -> bool:
        """Reread the keys if the change note moved (or it is time, or `force`); True when the table
        changed."""
        async with self._reading:
            return await self._reread(force)

    async def _reread(self, force: bool) -> bool:
        note = await self._keys.change_note()
        if not force and note == self._note and self._monotonic() - self._read_at < self._reread_s:
            return False
        table = key_table(await self._keys.list(), self._keys.env_admin_hash, self._keys.env_admin_by_ext_authz)
        self._note, self._read_at = note, self._monotonic()
        changed = table != self.table or not self.loaded
        if changed:
            self.table, self.loaded = table, True
            async with self._changed:
                self._changed.notify_all()
        return changed

    async def publish(self, within_s: float = 1.0) -> bool:
        """After a change made here: reread now and wait (at most `within_s`) until every gateway this
        replica serves has applied the new table, so an admin call returns with its key in effect.
        False when some gateway did not acknowledge in time (it gets the table all the same)."""
        try:
            await self.refresh(force=True)  # a read that starts now, after the change (and its note)
            async with self._changed:
                return await asyncio.wait_for(
                    self._changed.wait_for(lambda: all(v == self.table.version for v in self._applied.values())),
                    within_s,
                )
        except (TimeoutError, StoreUnavailable, ServiceError):
            return False

    async def applied(self, stream: object, version: str | None) -> None:
        """What a gateway's stream acknowledged (None: it closed)."""
        async with self._changed:
            if version is None:
                self._applied.pop(stream, None)
            else:
                self._applied[stream] = version
            self._changed.notify_all()

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            try:
                await self.refresh()
            except (StoreUnavailable, ServiceError) as problem:
                log.warning("client keys not reread: %s", getattr(problem, "message", problem))
            await asyncio.sleep(self._poll_s)

    async def next_table(self, after: KeyTable | None) -> KeyTable:
        """The current table once it is loaded and is not `after`."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.loaded and self.table is not after)
        return self.table
