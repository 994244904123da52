"""The discovery service's core: sources feed the catalogue, the store keeps it, watchers follow it.

Reports are applied one at a time (a lock), each followed by the time-based re-evaluation, saved in
one transaction and published to every watcher. A store that fails keeps the catalogue serving from
memory; what was not saved is saved with the next write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

from llmagg.common.backoff import Backoff
from llmagg.common.logging import log_fields
from llmagg.registry import Provider
from llmagg_discovery.domain.catalogue import Catalogue, Policy, snapshot
from llmagg_discovery.domain.ports import AccountDirectory, CatalogueStore, Source, SourceContext
from llmagg_discovery.domain.records import CatalogueSnapshot, Change, SourceReport
from llmagg_discovery.domain.scheduler import SourceRunner, SourceStatus, source_backoff

log = logging.getLogger(__name__)
_RECENT_REVISIONS = 256  # changes kept in memory for watchers that are behind
_REEVALUATE_EVERY_S = 60.0


class UnknownSource(ValueError):
    pass


class Discovery:
    def __init__(
        self,
        policy: Policy,
        store: CatalogueStore,
        sources: Iterable[Source],
        providers: Mapping[str, Provider],
        accounts: AccountDirectory,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        start_delay_s: float = 0.0,
    ) -> None:
        self._policy = policy
        self._store = store
        self._providers = providers
        self._accounts = accounts
        self._clock = clock
        self._start_delay_s = start_delay_s
        self.catalogue = Catalogue(policy)
        self._runners = {
            source.name: SourceRunner(source, self._apply, self._context, backoff or source_backoff(), clock)
            for source in sources
        }
        self._lock = asyncio.Lock()
        self._published = asyncio.Event()
        self._recent: deque[tuple[int, list[Change]]] = deque(maxlen=_RECENT_REVISIONS)
        self._unsaved: list[Change] = []
        self._seeding = False
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the stored catalogue, run the run-once sources (the baseline) now, schedule the rest."""
        await self._store.open()
        stored = await self._store.load()
        self.catalogue = Catalogue(self._policy, stored.models, stored.providers, stored.revision, stored.updated_at)
        await self._accounts.start()
        # A first start records no history for the baseline itself: every entry would be an "addition".
        self._seeding = self.catalogue.empty
        for runner in self._runners.values():
            if runner.source.interval_s <= 0:
                await runner.run_once()
        self._seeding = False
        log.info(
            "catalogue ready: %d providers, %d models, revision %d (%s)",
            len(self.catalogue.providers),
            len(self.catalogue.models),
            self.catalogue.revision,
            self._store.describe(),
        )
        for runner in self._runners.values():
            if runner.source.interval_s > 0:
                first = max(self._start_delay_s, getattr(runner.source, "first_delay_s", 0.0))
                self._tasks.append(asyncio.create_task(runner.loop(first)))
        self._tasks.append(asyncio.create_task(self._reevaluate_regularly()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._accounts.close()
        await self._store.close()

    # --- what the servicer asks -------------------------------------------------------------------------
    def snapshot(self) -> CatalogueSnapshot:
        return snapshot(self.catalogue)

    async def store_ready(self) -> bool:
        return await self._store.ping()

    def statuses(self) -> list[SourceStatus]:
        return [runner.status for runner in self._runners.values()]

    @property
    def source_names(self) -> list[str]:
        return list(self._runners)

    async def refresh(self, names: Iterable[str] = ()) -> list[Change]:
        """Run the named sources (every one when none is named) now; the changes they made."""
        wanted = list(dict.fromkeys(names)) or list(self._runners)
        unknown = [name for name in wanted if name not in self._runners]
        if unknown:
            raise UnknownSource(f"unknown sources {unknown}; known: {', '.join(self._runners)}")
        results = await asyncio.gather(*(self._runners[name].run_once() for name in wanted))
        changes = [change for result in results for change in result]
        changes += await self._reevaluate()
        return changes

    async def changes(self, since: float, provider: str | None, limit: int) -> list[Change]:
        return await self._store.changes(since, provider, limit)

    async def watch(self) -> AsyncIterator[tuple[CatalogueSnapshot, list[Change]]]:
        """The catalogue now, then after every revision with the changes since the last one yielded."""
        current = self.snapshot()
        seen = current.revision
        yield current, []
        while True:
            published = self._published
            if self.catalogue.revision == seen:
                await published.wait()
            current = self.snapshot()
            changes = [change for revision, batch in self._recent if revision > seen for change in batch]
            seen = current.revision
            yield current, changes

    # --- applying -----------------------------------------------------------------------------------
    def _context(self) -> SourceContext:
        return SourceContext(self._providers, self.catalogue, self._accounts, self._clock())

    async def _apply(self, report: SourceReport) -> list[Change]:
        async with self._lock:
            now = self._clock()
            before = self.catalogue.revision
            changes = self.catalogue.apply(report, now, record_changes=not self._seeding)
            changes += self.catalogue.reevaluate(now)
            changes = await self._save(changes)
            self._publish(before, changes)
        if changes:
            log.info(
                "%s: %d changes",
                report.source,
                len(changes),
                extra=log_fields(source=report.source, kinds=sorted({c.kind.value for c in changes})),
            )
        return changes

    async def _reevaluate(self) -> list[Change]:
        async with self._lock:
            before = self.catalogue.revision
            changes = await self._save(self.catalogue.reevaluate(self._clock()))
            self._publish(before, changes)
        return changes

    async def _reevaluate_regularly(self) -> None:
        every = min(_REEVALUATE_EVERY_S, max(self._policy.grace_s / 4, 1.0))
        while True:
            await asyncio.sleep(every)
            try:
                await self._reevaluate()
            except Exception:  # the timer must outlive any one bad round
                log.exception("re-evaluating the catalogue failed")

    async def _save(self, changes: list[Change]) -> list[Change]:
        catalogue = self.catalogue
        if not (changes or catalogue.dirty_models or catalogue.dirty_providers or self._unsaved):
            return changes
        pending = [*self._unsaved, *changes]
        try:
            saved = await self._store.save(
                catalogue.revision,
                catalogue.updated_at,
                [catalogue.models[key] for key in sorted(catalogue.dirty_models) if key in catalogue.models],
                [catalogue.providers[pid] for pid in sorted(catalogue.dirty_providers) if pid in catalogue.providers],
                pending,
            )
        except Exception as problem:  # serve from memory; the next write saves what this one could not
            log.error("cannot save the catalogue (%s); keeping it in memory", type(problem).__name__)
            self._unsaved = pending
            return changes
        self._unsaved = []
        catalogue.dirty_models.clear()
        catalogue.dirty_providers.clear()
        return saved[len(saved) - len(changes) :] if changes else []

    def _publish(self, before: int, changes: list[Change]) -> None:
        if self.catalogue.revision == before:
            return
        self._recent.append((self.catalogue.revision, changes))
        published, self._published = self._published, asyncio.Event()
        published.set()
