"""Client limits at the gateway without a hop for clients that have none.

Envoy's rate-limit filter (static in the gateway, asking the ratelimit service over
envoy.service.ratelimit.v3) sends a request's descriptor only when every action of it produces an
entry, and makes no call when none is produced. The first action reads LIMITED_HEADER, which one filter
sets: `llmagg.client-limits`, which the gateway gets by xDS (ECDS) from the ratelimit service, the owner
of the client limits (RATELIMIT_CLIENT_*). It is a header mutation wrapped in a matcher that skips it for
clients without limits: for them there is nothing to check and the hop (a Python service's turn on the
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
import re
from dataclasses import dataclass

from llmagg.common.grpc_interceptors import CLIENT_ID_METADATA, CLIENT_SCOPE_METADATA

FILTER_NAME = "llmagg.client-limits"
LIMITED_HEADER = "x-llmagg-client-limits"
ADMIN_SCOPE = "admin"
HEADER_MUTATION_TYPE = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
MATCHER_TYPE = "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher"
_SKIP = "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"
_HEADER_INPUT = "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput"
_NOTHING = "[^\\s\\S]"  # a pattern no value matches (no key has limits of its own)


@dataclass(frozen=True)
class LimitedClients:
    """Whose requests the gateway asks about: those of `ids`, and with `every_client` those of every key
    of scope `client` (admin keys only when in `ids`)."""

    every_client: bool
    ids: frozenset[str] = frozenset()

    @property
    def version(self) -> str:
        canonical = json.dumps([self.every_client, sorted(self.ids)])
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def mark_limited() -> dict:
    """The header mutation that marks a request as one to ask the ratelimit service about."""
    header = {"key": LIMITED_HEADER, "value": "check"}
    return {
        "@type": HEADER_MUTATION_TYPE,
        "mutations": {
            "request_mutations": [{"append": {"header": header, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}]
        },
    }


def descriptor_action() -> dict:
    """The rate-limit action that produces no descriptor (and so no call) for an unmarked request."""
    return {"request_headers": {"header_name": LIMITED_HEADER, "descriptor_key": "limits"}}


def _header(name: str, match: dict) -> dict:
    return {
        "single_predicate": {
            "input": {"name": name, "typed_config": {"@type": _HEADER_INPUT, "header_name": name}},
            "value_match": match,
        }
    }


def unlimited(clients: LimitedClients) -> dict:
    """The predicate of a request whose client has no limits (the marking is skipped)."""
    pattern = "|".join(re.escape(client) for client in sorted(clients.ids)) or _NOTHING
    not_named = {
        "not_matcher": _header(CLIENT_ID_METADATA, {"safe_regex": {"google_re2": {}, "regex": f"^(?:{pattern})$"}})
    }
    if not clients.every_client:
        return not_named
    admin = _header(CLIENT_SCOPE_METADATA, {"exact": ADMIN_SCOPE})
    return {"and_matcher": {"predicate": [not_named, admin]}}


def default_filter() -> dict:
    """The gateway's `llmagg.client-limits` until the service answers: every request is marked."""
    return {"name": FILTER_NAME, "typed_config": mark_limited()}


def limits_filter(clients: LimitedClients) -> dict:
    """The `llmagg.client-limits` filter (a TypedExtensionConfig, as JSON) for `clients`."""
    skip = {"action": {"name": "skip", "typed_config": {"@type": _SKIP}}}
    return {
        "name": FILTER_NAME,
        "typed_config": {
            "@type": MATCHER_TYPE,
            "extension_config": {"name": "envoy.filters.http.header_mutation", "typed_config": mark_limited()},
            "xds_matcher": {"matcher_list": {"matchers": [{"predicate": unlimited(clients), "on_match": skip}]}},
        },
    }
