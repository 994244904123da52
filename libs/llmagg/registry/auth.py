"""How a key travels to a provider, per auth style of the registry (AUTH_STYLES): the one place that
knows the headers, for the router's calls and discovery's model lists and probes alike."""

from __future__ import annotations

from llmagg.common.secrets import Secret
from llmagg.registry.schema import Provider

ANTHROPIC_VERSION = "2023-06-01"  # the `anthropic-version` header the Messages API requires


def key_headers(style: str, key: Secret | None) -> dict[str, str]:
    """The header that carries `key` in auth style `style`; none without a key or with style "none"."""
    if key is None:
        return {}
    if style == "bearer":
        return {"Authorization": f"Bearer {key.reveal()}"}
    if style == "token":
        return {"Authorization": f"Token {key.reveal()}"}
    if style in ("x-api-key", "x-goog-api-key"):
        return {style: key.reveal()}
    return {}


def listing_auth_style(provider: Provider, api: str) -> str:
    """The auth style of `provider`'s model-list (or probe) API `api`: Gemini's and Anthropic's own APIs
    take their own header, whatever the provider's chat endpoint uses; any other API a bearer token
    unless the provider says token, x-api-key or none."""
    if api == "gemini":
        return "x-goog-api-key"
    if api == "anthropic" or provider.auth == "x-api-key":
        return "x-api-key"
    if provider.auth in ("token", "none"):
        return provider.auth
    return "bearer"
