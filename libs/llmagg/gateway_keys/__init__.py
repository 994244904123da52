"""Client keys checked inside Envoy: the two HTTP filters the gateway gets by xDS (ECDS) from the
credentials service, rendered here for both (the gateway's deny-all default, the service's tables).

- `llmagg.client-key-routing` (Lua, client_keys.lua): removes identity headers a client sent, sends
  admin paths, keys without a stored {SHA} hash (LEGACY_IDS) and key ids the table does not know yet
  (created a moment ago on another credentials replica) to ext_authz, turns every other
  bearer key into basic credentials in `x-llmagg-basic` and sets the key's scope.
- `llmagg.client-key-hashes` (basic_auth): checks them against `<id>:{SHA}<base64 SHA-1 of the key>`
  lines and forwards the id as `x-llmagg-client-id`; skipped where ext_authz decides.

Envoy holds hashes only: a key is 192 random bits after its id, so an unsalted SHA-1 of it gives
nothing to guess from; the plaintext exists only with its client. The environment's admin key
(LLMAGG_ADMIN_KEY, chosen by an operator, maybe weak) is hashed there only when it has at least 32
characters; a shorter one is in LEGACY_IDS (as `admin-env`), so ext_authz checks it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from llmagg.common.grpc_interceptors import CLIENT_ID_METADATA, CLIENT_SCOPE_METADATA
from llmagg.envoy_matchers import by_header, skip, with_matcher
from llmagg.rpcs import admin_paths

ROUTING_FILTER = "llmagg.client-key-routing"
HASHES_FILTER = "llmagg.client-key-hashes"
FILTER_NAMES = (ROUTING_FILTER, HASHES_FILTER)
CLIENT_ID_HEADER = CLIENT_ID_METADATA  # the identity Envoy forwards is what services read
CLIENT_SCOPE_HEADER = CLIENT_SCOPE_METADATA
AUTH_HEADER = "x-llmagg-auth"  # which check a request got: envoy | ext | missing
BASIC_HEADER = "x-llmagg-basic"
# Dynamic metadata the routing filter sets where ext_authz decides (ext_authz runs only there).
METADATA_NAMESPACE, METADATA_KEY, EXT_AUTHZ = "llmagg.keys", "auth", "ext"
ENV_ADMIN_ID = "admin-env"
# Envoy's own APIs (xDS, ext_authz) are never a client's: through the gateway they are admin paths.
ENVOY_PATHS = ("/envoy.",)
# A user basic_auth knows when no key is known yet: no key maps to it, and no key matches its hash.
_NOBODY = "nobody:{SHA}" + base64.b64encode(bytes(20)).decode()

MISSING_MESSAGE = (
    "You didn't provide an API key. Send it as `Authorization: Bearer <key>` "
    "(`llmagg keys create` makes one; see README, 'Client API keys')."
)
INVALID_MESSAGE = "Incorrect API key provided, or the key was revoked."

LUA_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
BASIC_AUTH_TYPE = "type.googleapis.com/envoy.extensions.filters.http.basic_auth.v3.BasicAuth"
_LUA_SOURCE = Path(__file__).with_name("client_keys.lua")


def sha_hash(key: str) -> str:
    """The hash basic_auth checks a key against: `{SHA}` and the base64 of its SHA-1."""
    return "{SHA}" + base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()


@dataclass(frozen=True)
class KeyTable:
    """What Envoy needs to know of the keys: per usable key its id and hash (or, stored before hashes
    were, that ext_authz must check it), and which are admin keys."""

    hashes: tuple[tuple[str, str], ...] = ()  # (id, {SHA} hash), sorted by id
    admin_ids: frozenset[str] = frozenset()
    legacy_ids: frozenset[str] = frozenset()
    revoked_ids: frozenset[str] = frozenset()  # refused here too: never sent on to ext_authz

    @property
    def known_ids(self) -> frozenset[str]:
        """Ids Envoy decides itself; any other `sk-llmagg-` id may be a key created a moment ago on a
        credentials replica whose change this table does not have yet: ext_authz reads the store."""
        return frozenset(user for user, _ in self.hashes) | self.revoked_ids

    @property
    def version(self) -> str:
        canonical = json.dumps([self.hashes, sorted(self.admin_ids), sorted(self.legacy_ids), sorted(self.revoked_ids)])
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


DENY_ALL = KeyTable()


def _lua_set(names) -> str:
    return "{" + ", ".join(f"[{json.dumps(name)}] = true" for name in sorted(names)) + "}"


def routing_filter(table: KeyTable) -> dict:
    paths = ", ".join(json.dumps(path) for path in (*admin_paths(), *ENVOY_PATHS))
    prelude = (
        f"local ADMIN_PATHS = {{{paths}}}\n"
        f"local ADMIN_IDS = {_lua_set(table.admin_ids)}\n"
        f"local LEGACY_IDS = {_lua_set(table.legacy_ids)}\n"
        f"local KNOWN_IDS = {_lua_set(table.known_ids)}\n"
        f"local ENV_ADMIN_ID = {json.dumps(ENV_ADMIN_ID)}\n"
    )
    return {
        "name": ROUTING_FILTER,
        "typed_config": {
            "@type": LUA_TYPE,
            "default_source_code": {"inline_string": prelude + _LUA_SOURCE.read_text()},
        },
    }


def hashes_filter(table: KeyTable) -> dict:
    users = "\n".join(f"{user}:{digest}" for user, digest in table.hashes) or _NOBODY
    basic_auth = {
        "name": "envoy.filters.http.basic_auth",
        "typed_config": {
            "@type": BASIC_AUTH_TYPE,
            "users": {"inline_string": users + "\n"},
            "forward_username_header": CLIENT_ID_HEADER,
            "authentication_header": BASIC_HEADER,
        },
    }
    skip_where_ext_authz_decides = by_header(AUTH_HEADER, {EXT_AUTHZ: skip()}, name="auth")
    return {"name": HASHES_FILTER, "typed_config": with_matcher(basic_auth, skip_where_ext_authz_decides)}


def filters(table: KeyTable) -> dict[str, dict]:
    """Each filter's TypedExtensionConfig (as JSON) by its name."""
    return {ROUTING_FILTER: routing_filter(table), HASHES_FILTER: hashes_filter(table)}
