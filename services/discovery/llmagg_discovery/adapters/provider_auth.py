"""The headers that carry a key, per auth style and model-list API."""

from __future__ import annotations

from llmagg.common.secrets import Secret
from llmagg.registry import Provider

ANTHROPIC_VERSION = "2023-06-01"


def auth_headers(provider: Provider, key: Secret | None, api: str | None = None) -> dict[str, str]:
    api = api or provider.listing_api
    headers: dict[str, str] = {"Accept": "application/json"}
    if api == "anthropic" or provider.protocol == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    if key is None:
        return headers
    value = key.reveal()
    if api == "gemini":
        headers["x-goog-api-key"] = value
    elif api == "anthropic" or provider.auth == "x-api-key":
        headers["x-api-key"] = value
    elif provider.auth == "token":
        headers["Authorization"] = f"Token {value}"
    elif provider.auth != "none":
        headers["Authorization"] = f"Bearer {value}"
    return headers
