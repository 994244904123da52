"""Client limits at the gateway without a hop for clients that have none.

Envoy's rate-limit filter (static in the gateway, asking the ratelimit service over
envoy.service.ratelimit.v3) sends a request's descriptor only when every action of it produces an
entry, and makes no call when none is produced. The first action reads LIMITED_HEADER, which one filter
sets: `llmagg.client-limits`, which the gateway gets by xDS (ECDS) from the ratelimit service, the owner
of the client limits (RATELIMIT_CLIENT_*). It is Envoy's composite filter, whose matcher runs a header
mutation for the clients with limits (their ids in an exact-match map, any number of them) and nothing
for the others: for them there is nothing to check and the hop (a Python service's turn on the
request's path, in series) is not taken. Rendered here for both sides: the gateway's default
(`default_filter`, in force until the service answers: every request is asked about) and the service's
resource.

Who has limits is what the service's ClientPolicy says: with default limits every key of scope
`client`; an admin key only with limits of its own; any key RATELIMIT_CLIENT_LIMITS names. Client ids
are key ids, matched exactly. A client sending LIMITED_HEADER itself only gets its own request checked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from llmagg.common.grpc_interceptors import CLIENT_ID_METADATA, CLIENT_SCOPE_METADATA
from llmagg.envoy_matchers import by_header, with_matcher

FILTER_NAME = "llmagg.client-limits"
LIMITED_HEADER = "x-llmagg-client-limits"
ADMIN_SCOPE = "admin"
HEADER_MUTATION_TYPE = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
_COMPOSITE = "type.googleapis.com/envoy.extensions.filters.http.composite.v3.Composite"
_EXECUTE = "type.googleapis.com/envoy.extensions.filters.http.composite.v3.ExecuteFilterAction"
CLIENT_SCOPE = "client"
_NO_CLIENT = " "  # no key id has a space: the map Envoy requires to be non-empty, when no key is named


@dataclass(frozen=True)
class LimitedClients:
    """Whose requests the gateway asks about: those of `ids`, and with `every_client` those of every key
    of scope `client` (admin keys only when in `ids`)."""

    every_client: bool
    ids: frozenset[str] = frozenset()


def mark_limited() -> dict:
    """The header mutation that marks a request as one to ask the ratelimit service about."""
    header = {"key": LIMITED_HEADER, "value": "check"}
    return {
        "@type": HEADER_MUTATION_TYPE,
        "mutations": {
            "request_mutations": [{"append": {"header": header, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}]
        },
    }


_MARK_FILTER = {"name": "envoy.filters.http.header_mutation", "typed_config": mark_limited()}


def descriptor_action() -> dict:
    """The rate-limit action that produces no descriptor (and so no call) for an unmarked request."""
    return {"request_headers": {"header_name": LIMITED_HEADER, "descriptor_key": "limits"}}


def marking(clients: LimitedClients) -> dict:
    """Which requests get the marking header: the named ids' and, with `every_client`, those of keys of
    scope `client`; any other request none (no action: the composite filter runs nothing)."""
    mark = {"action": {"name": "mark", "typed_config": {"@type": _EXECUTE, "typed_config": _MARK_FILTER}}}
    scoped = {"matcher": by_header(CLIENT_SCOPE_METADATA, {CLIENT_SCOPE: mark})} if clients.every_client else None
    named = {client: mark for client in sorted(clients.ids)} or {_NO_CLIENT: mark}
    return by_header(CLIENT_ID_METADATA, named, scoped)


def default_filter() -> dict:
    """The gateway's `llmagg.client-limits` until the service answers: every request is marked."""
    return {"name": FILTER_NAME, "typed_config": mark_limited()}


def limits_filter(clients: LimitedClients) -> dict:
    """The `llmagg.client-limits` filter (a TypedExtensionConfig, as JSON) for `clients`: Envoy's composite
    filter, which runs the marking for the requests `marking` picks (ids matched exactly, any number)."""
    composite = {"name": "envoy.filters.http.composite", "typed_config": {"@type": _COMPOSITE}}
    return {"name": FILTER_NAME, "typed_config": with_matcher(composite, marking(clients))}


def version(config: dict) -> str:
    """The version of a rendered filter: a new rendering of the same clients is a new version."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
