"""The pieces of Envoy's matching API the gateway's filters are wrapped in, rendered once: a filter
under a matcher (ExtensionWithMatcher), a matcher on one request header's exact value, and the action
that skips the wrapped filter. Used by the client-key filters (llmagg.gateway_keys), the client-limits
marking (llmagg.gateway_limits) and the gateway's transcoder."""

from __future__ import annotations

MATCHER_TYPE = "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher"
_SKIP_TYPE = "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"
_HEADER_INPUT = "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput"


def skip() -> dict:
    """The OnMatch that skips the wrapped filter."""
    return {"action": {"name": "skip", "typed_config": {"@type": _SKIP_TYPE}}}


def by_header(header: str, values: dict[str, dict], otherwise: dict | None = None, name: str = "") -> dict:
    """A matcher on a request header's exact value: each value's OnMatch (`otherwise`: what any other
    value, or none, leads to). `name` names the input (default: the header's)."""
    matcher: dict = {
        "matcher_tree": {
            "input": {
                "name": name or header.lstrip(":"),
                "typed_config": {"@type": _HEADER_INPUT, "header_name": header},
            },
            "exact_match_map": {"map": values},
        }
    }
    if otherwise is not None:
        matcher["on_no_match"] = otherwise
    return matcher


def with_matcher(extension: dict, matcher: dict) -> dict:
    """`extension` (a filter's name and typed config) under `matcher`: the typed config of the wrapper."""
    return {"@type": MATCHER_TYPE, "extension_config": extension, "xds_matcher": matcher}
