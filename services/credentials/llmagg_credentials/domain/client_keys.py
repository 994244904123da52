"""Client API keys: created with a secret shown once, stored as a salted hash, verified, revoked.

A key reads `sk-llmagg-<id>-<secret>`: the public id finds its one stored record, HMAC-SHA256 with the
record's salt checks the rest. Verdicts are cached for `cache_ttl_s` under a SHA-256 of the presented
key (never the key), so the gateway's check of each request costs a dictionary lookup; a revocation
therefore takes effect within that TTL wherever this service checks keys (ext_authz: admin paths and
keys stored before Envoy checked them; admin RPCs). Every Envoy checks the other keys itself against
their `envoy_hash` (key_table.py, by xDS). Each create, revoke or recorded hash bumps the store's
change note, so every replica notices within its poll. While the store is down, keys verified before
are still checked against the records last read.
`LLMAGG_ADMIN_KEY`, when set, is an admin key of id `admin-env` that lives only in the environment. An
operator chooses it, so it may be weak: the gateways get its unsalted {SHA} hash only when it has at
least ENV_ADMIN_HASHED_FROM characters (long enough to be a random secret); a shorter one is checked
here, by ext_authz, on every request that presents it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.logging import log_fields
from llmagg.common.secrets import Secret
from llmagg.gateway_keys import ENV_ADMIN_ID, INVALID_MESSAGE, MISSING_MESSAGE, sha_hash
from llmagg_credentials.domain.errors import invalid, not_found, store_errors
from llmagg_credentials.domain.records import ClientKeyRecord, Clock, timestamp, utc_now
from llmagg_credentials.domain.store import CHANGES, CLIENT_KEYS, Store, StoreUnavailable, VersionConflict

log = logging.getLogger(__name__)

ADMIN, CLIENT = "admin", "client"
SCOPES = (ADMIN, CLIENT)
PREFIX = "sk-llmagg-"
_ID = re.compile(r"^[0-9a-f]{12}$")
_MAX_CACHED = 10_000
ENV_ADMIN_HASHED_FROM = 32  # characters


@dataclass(frozen=True)
class Verdict:
    """What a presented key is worth: a client id and scope, or a problem (code + message)."""

    client_id: str = ""
    scope: str = ""
    problem: str = ""  # "missing_api_key" | "invalid_api_key" | "credential_store_unavailable"
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


MISSING = Verdict(problem="missing_api_key", message=MISSING_MESSAGE)
INVALID = Verdict(problem="invalid_api_key", message=INVALID_MESSAGE)
UNAVAILABLE = Verdict(
    problem="credential_store_unavailable",
    message="The key store is unavailable and this key was not seen before; retry shortly.",
)


def _digest(salt: bytes, secret: str) -> str:
    return hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()


def _key_id(presented: str) -> str | None:
    if not presented.startswith(PREFIX):
        return None
    key_id, dash, rest = presented[len(PREFIX) :].partition("-")
    return key_id if dash and rest and _ID.match(key_id) else None


class ClientKeys:
    def __init__(
        self,
        store: Store,
        *,
        cache_ttl_s: float = 10.0,
        env_admin_key: Secret | None = None,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = cache_ttl_s
        self._env_admin = hashlib.sha256(env_admin_key.reveal().encode()).digest() if env_admin_key else None
        hashed = env_admin_key is not None and len(env_admin_key.reveal()) >= ENV_ADMIN_HASHED_FROM
        self.env_admin_hash = sha_hash(env_admin_key.reveal()) if hashed else ""
        self.env_admin_by_ext_authz = env_admin_key is not None and not hashed
        if env_admin_key is not None:
            log.info(
                "LLMAGG_ADMIN_KEY: %s",
                "its hash goes to the gateways (Envoy checks it)"
                if hashed
                else f"shorter than {ENV_ADMIN_HASHED_FROM} characters, so no gateway holds its hash:"
                " the credentials service checks it on every request (ext_authz)",
            )
        self._clock = clock
        self._monotonic = monotonic
        self._verdicts: dict[bytes, tuple[Verdict, float]] = {}
        self._known: dict[str, ClientKeyRecord] = {}  # last record read per id: checks while the store is down
        # Run after a key was created or revoked here, before the call returns (the gateways' table).
        self.after_change: Callable[[], Awaitable[object]] | None = None

    # --- management ---------------------------------------------------------------------------------
    async def create(self, name: str, scope: str) -> tuple[ClientKeyRecord, Secret]:
        scope = scope or CLIENT
        if scope not in SCOPES:
            raise invalid(f"`scope` must be one of {', '.join(SCOPES)}; got {scope!r}.", "invalid_scope", "scope")
        if len(name) > 100 or not name.isprintable():
            raise invalid("`name` must be at most 100 printable characters.", "invalid_name", "name")
        for _ in range(3):  # a 48-bit id clashes almost never; never twice in a row
            key_id = secrets.token_hex(6)
            secret = f"{PREFIX}{key_id}-{secrets.token_urlsafe(24)}"
            salt = secrets.token_bytes(16)
            record = ClientKeyRecord(
                id=key_id,
                name=name,
                scope=scope,
                salt=salt.hex(),
                digest=_digest(salt, secret),
                created_at=timestamp(self._clock),
                envoy_hash=sha_hash(secret),
            )
            try:
                with store_errors():
                    version = await self._store.write(CLIENT_KEYS, key_id, record.document(), version=0)
            except VersionConflict:
                continue
            stored = replace(record, version=version)
            self._known[key_id] = stored
            await self._note_change(published=True)
            log.info("client key created", extra=log_fields(client_id=key_id, scope=scope))
            return stored, Secret(secret)
        raise ServiceError(ErrorKind.INTERNAL, "Could not allocate a key id; retry.", code="key_id_clash")

    async def list(self) -> list[ClientKeyRecord]:
        with store_errors():
            names = await self._store.names(CLIENT_KEYS)
            records = []
            for name in names:
                document = await self._store.read(CLIENT_KEYS, name)
                if document is not None:
                    records.append(ClientKeyRecord.from_document(document.data, document.version))
        return sorted(records, key=lambda r: (r.created_at, r.id))

    async def revoke(self, key_id: str) -> ClientKeyRecord:
        missing = not_found(f"The client key {key_id!r}", "key_not_found")
        if not _ID.match(key_id):
            raise missing
        for _ in range(5):
            with store_errors():
                document = await self._store.read(CLIENT_KEYS, key_id)
            if document is None:
                raise missing
            record = ClientKeyRecord.from_document(document.data, document.version)
            if record.revoked:
                return record
            revoked = replace(record, revoked_at=timestamp(self._clock))
            try:
                with store_errors():
                    version = await self._store.write(CLIENT_KEYS, key_id, revoked.document(), version=record.version)
            except VersionConflict:
                continue
            revoked = replace(revoked, version=version)
            self._known[key_id] = revoked
            self._verdicts = {k: v for k, v in self._verdicts.items() if v[0].client_id != key_id}
            await self._note_change(published=True)
            log.info("client key revoked", extra=log_fields(client_id=key_id))
            return revoked
        raise ServiceError(ErrorKind.UNAVAILABLE, f"The key {key_id!r} kept changing; retry.", code="conflict")

    async def _note_change(self, published: bool = False) -> None:
        """Bump the change note every replica polls (key_table.py). Best effort: the key is written
        already, and each replica also rereads every key now and then. `published`: and wait until
        the gateways this replica serves have the change (after_change)."""
        await self._bump_note()
        if published and self.after_change is not None:
            await self.after_change()

    async def _bump_note(self) -> None:
        for _ in range(5):
            try:
                with store_errors():
                    note = await self._store.read(CHANGES, CLIENT_KEYS)
                    await self._store.write(
                        CHANGES, CLIENT_KEYS, {"at": timestamp(self._clock)}, version=note.version if note else 0
                    )
                return
            except VersionConflict:
                continue
            except ServiceError:
                log.warning("the client keys' change note was not written: replicas see the change later")
                return

    async def change_note(self) -> int:
        """The change note's version: it moves whenever a key was created, revoked or got its hash."""
        note = await self._store.read(CHANGES, CLIENT_KEYS)
        return note.version if note else 0

    async def _record_envoy_hash(self, record: ClientKeyRecord, presented: str) -> None:
        """A key stored before Envoy checked keys, verified now: store its hash, so that from now on
        every Envoy checks it itself (the migration of existing keys; needs the key, which only its
        client has)."""
        hashed = replace(record, envoy_hash=sha_hash(presented))
        try:
            with store_errors():
                version = await self._store.write(CLIENT_KEYS, record.id, hashed.document(), version=record.version)
        except (VersionConflict, ServiceError):
            return  # changed meanwhile (revoked?) or the store is down: the next presentation tries again
        self._known[record.id] = replace(hashed, version=version)
        await self._note_change()
        log.info("client key hash recorded for the gateway", extra=log_fields(client_id=record.id))

    async def has_admin(self) -> bool:
        """Whether any usable admin key exists (the environment's counts)."""
        if self._env_admin is not None:
            return True
        return any(r.scope == ADMIN and not r.revoked for r in await self.list())

    # --- verification -------------------------------------------------------------------------------
    async def verify(self, presented: str) -> Verdict:
        if not presented:
            return MISSING
        fingerprint = hashlib.sha256(presented.encode()).digest()
        now = self._monotonic()
        cached = self._verdicts.get(fingerprint)
        if cached is not None and cached[1] > now:
            return cached[0]
        verdict = await self._check(presented, fingerprint)
        if verdict is not UNAVAILABLE:
            if len(self._verdicts) >= _MAX_CACHED:
                self._verdicts.clear()  # presented keys come from anyone: stay bounded
            self._verdicts[fingerprint] = (verdict, now + self._ttl)
        return verdict

    async def _check(self, presented: str, fingerprint: bytes) -> Verdict:
        if self._env_admin is not None and hmac.compare_digest(fingerprint, self._env_admin):
            return Verdict(client_id=ENV_ADMIN_ID, scope=ADMIN)
        key_id = _key_id(presented)
        if key_id is None:
            return INVALID
        try:
            document = await self._store.read(CLIENT_KEYS, key_id)
        except StoreUnavailable:
            record = self._known.get(key_id)
            if record is None:
                return UNAVAILABLE
        else:
            if document is None:
                self._known.pop(key_id, None)
                return INVALID
            record = ClientKeyRecord.from_document(document.data, document.version)
            self._known[key_id] = record
        if record.revoked or not hmac.compare_digest(_digest(bytes.fromhex(record.salt), presented), record.digest):
            return INVALID
        if not record.envoy_hash:
            await self._record_envoy_hash(record, presented)
        return Verdict(client_id=record.id, scope=record.scope)
