"""The key's header per auth style, for the router's calls and discovery's listings (one place)."""

from __future__ import annotations

import pytest

from llmagg.common.secrets import Secret
from llmagg.registry import parse_provider
from llmagg.registry.auth import key_headers, listing_auth_style

KEY = Secret("sk-test")


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("bearer", {"Authorization": "Bearer sk-test"}),
        ("token", {"Authorization": "Token sk-test"}),
        ("x-api-key", {"x-api-key": "sk-test"}),
        ("x-goog-api-key", {"x-goog-api-key": "sk-test"}),
        ("none", {}),
    ],
)
def test_each_auth_style_has_its_header(style, expected):
    assert key_headers(style, KEY) == expected
    assert key_headers(style, None) == {}


@pytest.mark.parametrize(
    ("auth", "api", "expected"),
    [
        ("bearer", "openai", "bearer"),
        ("bearer", "gemini", "x-goog-api-key"),
        ("bearer", "anthropic", "x-api-key"),
        ("x-goog-api-key", "openai", "bearer"),
        ("x-api-key", "openai", "x-api-key"),
        ("token", "cohere", "token"),
        ("none", "openai", "none"),
    ],
)
def test_a_listing_api_chooses_its_style(auth, api, expected):
    provider = parse_provider({"id": "p", "base_url": "https://p.example/v1", "auth": auth, "models": {}})
    assert listing_auth_style(provider, api) == expected
