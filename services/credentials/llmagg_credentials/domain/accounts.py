"""Provider accounts: validated, written whole, leased to the router, disabled when a provider rejects them.

Every change is a read, a change and one check-and-set write of the account's document, so two
writers never lose each other's change and a failed write leaves the old document as it was. The
book keeps the last listing it read (for `store_cache_s`) so that routers polling the list do not
read every document from the store each time; its own writes update that copy at once.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.logging import log_fields
from llmagg.common.secrets import Secret
from llmagg.registry import ConfiguredAccount, Provider, RegistryError, fill_placeholders
from llmagg.registry.schema import check_limits
from llmagg_credentials.domain.errors import invalid, not_found, store_errors
from llmagg_credentials.domain.records import AccountRecord, Clock, timestamp, utc_now
from llmagg_credentials.domain.store import ACCOUNTS, Store, StoreUnavailable, VersionConflict

log = logging.getLogger(__name__)

ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CAS_TRIES = 5


def _account_missing(alias: str) -> ServiceError:
    return not_found(f"The account {alias!r}", "account_not_found")


class AccountBook:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        *,
        cache_s: float = 2.0,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._providers = providers
        self._cache_s = cache_s
        self._clock = clock
        self._monotonic = monotonic
        self._listing: dict[str, AccountRecord] | None = None
        self._listed_at = 0.0
        # This replica's own writes while a listing is read from the store (alias -> record, None: deleted):
        # laid over that listing, which may have been read before them.
        self._written_meanwhile: list[dict[str, AccountRecord | None]] = []

    # --- validation ---------------------------------------------------------------------------------
    def _provider(self, provider_id: str) -> Provider:
        provider = self._providers.get(provider_id)
        if provider is None:
            raise invalid(
                f"Unknown provider {provider_id!r}. Known providers: {', '.join(sorted(self._providers))}.",
                "unknown_provider",
                "provider",
            )
        return provider

    def _key_for(self, provider: Provider, api_key: str) -> Secret | None:
        api_key = api_key.strip()
        if provider.auth == "none":
            return None
        if not api_key:
            raise invalid(
                f"`api_key` is required: {provider.id} authenticates with a key.", "missing_api_key", "api_key"
            )
        if any(c.isspace() or not c.isprintable() for c in api_key):
            raise invalid("`api_key` must be one printable word.", "invalid_api_key", "api_key")
        return Secret(api_key)

    @staticmethod
    def _limits(limits: Mapping[str, float]) -> dict[str, float]:
        if not limits:
            return {}
        whole = {k: int(v) if float(v).is_integer() else v for k, v in limits.items()}
        try:
            return check_limits(whole, "`limits`")
        except RegistryError as exc:
            raise invalid(str(exc), "invalid_limits", "limits") from None

    # --- reads --------------------------------------------------------------------------------------
    async def _read(self, alias: str) -> AccountRecord:
        if not ALIAS.match(alias):
            raise _account_missing(alias)
        with store_errors():
            document = await self._store.read(ACCOUNTS, alias)
        if document is None:
            self._forget(alias)
            raise _account_missing(alias)
        record = AccountRecord.from_document(document.data, document.version)
        self._remember(record)
        return record

    async def get(self, alias: str) -> AccountRecord:
        return await self._read(alias)

    async def list(self, provider: str = "") -> list[AccountRecord]:
        """Every account (of `provider`), highest priority first, then by alias. While the store is down,
        the last listing read is served (the router keeps routing on it)."""
        listing = self._listing
        if listing is None or self._monotonic() - self._listed_at > self._cache_s:
            try:
                listing = await self._load()
            except StoreUnavailable as problem:
                if listing is None:
                    with store_errors():
                        raise problem from None
                log.warning("serving the last account listing: %s", problem)
        records = [r for r in listing.values() if not provider or r.provider == provider]
        return sorted(records, key=lambda r: (-r.priority, r.alias))

    async def _load(self) -> dict[str, AccountRecord]:
        listing: dict[str, AccountRecord] = {}
        written: dict[str, AccountRecord | None] = {}
        self._written_meanwhile.append(written)
        try:
            for name in await self._store.names(ACCOUNTS):
                document = await self._store.read(ACCOUNTS, name)
                if document is not None:
                    listing[name] = AccountRecord.from_document(document.data, document.version)
        finally:
            self._written_meanwhile.remove(written)
        for alias, record in written.items():
            if record is None:
                listing.pop(alias, None)
            elif alias not in listing or listing[alias].version < record.version:
                listing[alias] = record
        self._listing, self._listed_at = listing, self._monotonic()
        return listing

    def _remember(self, record: AccountRecord) -> None:
        if self._listing is not None:
            self._listing[record.alias] = record
        for written in self._written_meanwhile:
            written[record.alias] = record

    def _forget(self, alias: str) -> None:
        if self._listing is not None:
            self._listing.pop(alias, None)
        for written in self._written_meanwhile:
            written[alias] = None

    # --- writes -------------------------------------------------------------------------------------
    async def _write(self, record: AccountRecord) -> AccountRecord:
        with store_errors():
            version = await self._store.write(ACCOUNTS, record.alias, record.document(), version=record.version)
        stored = replace(record, version=version)
        self._remember(stored)
        return stored

    async def _change(self, alias: str, change: Callable[[AccountRecord], AccountRecord | None]) -> AccountRecord:
        """Read, change, write with check-and-set; a concurrent change makes it start over (bounded)."""
        for _ in range(_CAS_TRIES):
            current = await self._read(alias)
            changed = change(current)
            if changed is None or changed == current:
                return current
            try:
                return await self._write(replace(changed, updated_at=timestamp(self._clock)))
            except VersionConflict:
                continue
        raise ServiceError(
            ErrorKind.UNAVAILABLE, f"The account {alias!r} kept changing under this update; retry.", code="conflict"
        )

    async def _default_alias(self, provider: str) -> str:
        with store_errors():
            taken = set(await self._store.names(ACCOUNTS))
        for n in range(1, len(taken) + 2):
            if f"{provider}-{n}" not in taken:
                return f"{provider}-{n}"
        raise AssertionError("unreachable: one of len(taken) + 1 names is free")

    async def add(
        self,
        provider: str,
        alias: str,
        api_key: str,
        *,
        labels: Mapping[str, str] | None = None,
        priority: int = 0,
        limits: Mapping[str, float] | None = None,
        params: Mapping[str, str] | None = None,
        enabled: bool = True,
        source: str = "cli",
    ) -> AccountRecord:
        spec = self._provider(provider)
        if alias and not ALIAS.match(alias):
            raise invalid(
                "`alias` must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
                "invalid_alias",
                "alias",
            )
        key = self._key_for(spec, api_key)
        params = {str(k): str(v) for k, v in (params or {}).items()}
        try:
            fill_placeholders(spec.base_url, params, f"provider {provider!r}")
        except RegistryError as exc:
            raise invalid(str(exc), "missing_params", "params") from None
        now = timestamp(self._clock)
        record = AccountRecord(
            provider=provider,
            alias=alias or await self._default_alias(provider),
            key=key,
            enabled=enabled,
            disabled_reason="" if enabled else "disabled by an admin",
            disabled_at="" if enabled else now,
            disabled_by="" if enabled else "admin",
            labels=dict(labels or {}),
            priority=priority,
            limits=self._limits(limits or {}),
            params=params,
            source=source,
            created_at=now,
            updated_at=now,
        )
        try:
            stored = await self._write(record)
        except VersionConflict:
            raise ServiceError(
                ErrorKind.ALREADY_EXISTS,
                f"An account with alias {record.alias!r} already exists; choose another alias or rotate its key.",
                code="account_exists",
                param="alias",
            ) from None
        log.info("account added", extra=log_fields(provider=provider, account=stored.alias, source=source))
        return stored

    async def update(
        self,
        alias: str,
        *,
        enabled: bool | None = None,
        labels: Mapping[str, str] | None = None,
        priority: int | None = None,
        limits: Mapping[str, float] | None = None,
        remove_limits: Iterable[str] = (),
    ) -> AccountRecord:
        limits = self._limits(limits or {})
        removed = set(remove_limits)
        now = timestamp(self._clock)

        def change(current: AccountRecord) -> AccountRecord:
            record = current
            if enabled is True and not current.enabled:
                record = record.enabled_again()
            elif enabled is False and (current.enabled or current.disabled_by != "admin"):
                record = replace(
                    record, enabled=False, disabled_reason="disabled by an admin", disabled_at=now, disabled_by="admin"
                )
            if labels:
                merged = {**record.labels, **labels}
                record = replace(record, labels={k: v for k, v in merged.items() if v})
            if priority is not None:
                record = replace(record, priority=priority)
            if limits or removed:
                kept = {k: v for k, v in {**record.limits, **limits}.items() if k not in removed}
                record = replace(record, limits=kept)
            return record

        updated = await self._change(alias, change)
        log.info("account updated", extra=log_fields(provider=updated.provider, account=alias, enabled=updated.enabled))
        return updated

    async def rotate(self, alias: str, api_key: str) -> AccountRecord:
        current = await self._read(alias)
        key = self._key_for(self._provider(current.provider), api_key)

        def change(record: AccountRecord) -> AccountRecord:
            rotated = replace(record, key=key, key_version=record.key_version + 1)
            return rotated.enabled_again() if record.disabled_by == "upstream" else rotated

        rotated = await self._change(alias, change)
        log.info(
            "account key rotated",
            extra=log_fields(provider=rotated.provider, account=alias, key_version=rotated.key_version),
        )
        return rotated

    async def delete(self, alias: str) -> None:
        if not ALIAS.match(alias):
            raise _account_missing(alias)
        with store_errors():
            deleted = await self._store.delete(ACCOUNTS, alias)
        self._forget(alias)
        if not deleted:
            raise _account_missing(alias)
        log.info("account deleted", extra=log_fields(account=alias))

    # --- the router's side --------------------------------------------------------------------------
    async def lease(self, provider: str, alias: str, *, probe: bool = False) -> AccountRecord:
        """The account with its key, read fresh from the store. A disabled account has no lease, except
        for a probe of one a provider rejected (the router tries it again after its cooldown)."""
        record = await self._read(alias)
        if record.provider != provider:
            raise _account_missing(alias)
        if not record.enabled and not (probe and record.disabled_by == "upstream"):
            raise ServiceError(
                ErrorKind.FAILED_PRECONDITION,
                f"The account {alias!r} is disabled: {record.disabled_reason}.",
                code="account_disabled",
            )
        return record

    async def report(
        self, provider: str, alias: str, *, accepted: bool, status: int, key_version: int
    ) -> AccountRecord:
        """A rejection disables the account; an acceptance re-enables one a rejection had disabled.
        A report about an older key than the stored one says nothing about the current key."""
        now = timestamp(self._clock)

        def change(current: AccountRecord) -> AccountRecord | None:
            if current.provider != provider or (key_version and key_version != current.key_version):
                return None
            if accepted:
                return current.enabled_again() if current.disabled_by == "upstream" else None
            if not current.enabled:
                return None
            reason = f"the provider rejected the key (HTTP {status})" if status else "the provider rejected the key"
            return replace(current, enabled=False, disabled_reason=reason, disabled_at=now, disabled_by="upstream")

        record = await self._change(alias, change)
        if not accepted and not record.enabled and record.disabled_at == now:
            log.warning(
                "account disabled: %s", record.disabled_reason, extra=log_fields(provider=provider, account=alias)
            )
        return record

    # --- start-up -----------------------------------------------------------------------------------
    async def import_configured(self, configured: Iterable[ConfiguredAccount]) -> tuple[int, int]:
        """Accounts of LLMAGG_CONFIG into the store: new ones added, changed keys of imported ones
        rotated, accounts added through the API left alone. Returns (added, rotated)."""
        added = rotated = 0
        for entry in configured:
            account = entry.account
            try:
                current = await self._read(account.alias)
            except ServiceError as error:
                if error.kind is not ErrorKind.NOT_FOUND:
                    raise
                await self.add(
                    account.provider,
                    account.alias,
                    entry.key.reveal() if entry.key else "",
                    params=entry.params,
                    source="config",
                )
                added += 1
                continue
            if current.source != "config" or current.provider != account.provider:
                log.info("config account %s exists in the store (added through the API); kept as stored", account.alias)
            elif entry.key is not None and current.key != entry.key:
                await self.rotate(account.alias, entry.key.reveal())
                rotated += 1
        return added, rotated
