"""The headers of a model-list or probe call: the key in the API's auth style (llmagg.registry.auth)."""

from __future__ import annotations

from llmagg.common.secrets import Secret
from llmagg.registry import Provider
from llmagg.registry.auth import ANTHROPIC_VERSION, key_headers, listing_auth_style


def auth_headers(provider: Provider, key: Secret | None, api: str | None = None) -> dict[str, str]:
    api = api or provider.listing_api
    headers: dict[str, str] = {"Accept": "application/json"}
    if api == "anthropic" or provider.protocol == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    return headers | key_headers(listing_auth_style(provider, api), key)
