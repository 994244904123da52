import logging

import pytest

from llmagg.common.secrets import Secret
from llmagg_router.domain.config import ConfigError, build_config

from .helpers import ENV, PROVIDERS

CLOUDFLARE = {
    "id": "cloudflare",
    "name": "Cloudflare",
    "protocol": "openai",
    "base_url": "https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/v1",
    "models": [{"id": "@cf/meta/llama-3.1-8b-instruct"}],
}


def test_an_inline_key_is_rejected_with_how_to_fix_it():
    with pytest.raises(ConfigError, match="api_key_env"):
        build_config(PROVIDERS, {"accounts": [{"provider": "fast", "api_key": "sk-live-123"}]}, ENV)


def test_an_account_whose_key_variable_is_unset_is_skipped_and_named(caplog):
    caplog.set_level(logging.WARNING)
    config = build_config(PROVIDERS, {"accounts": [{"provider": "fast", "api_key_env": "NOT_SET"}]}, ENV)
    assert config.accounts == ()
    assert "NOT_SET" in caplog.text


def test_keys_never_show_in_repr():
    config = build_config(PROVIDERS, {"accounts": [{"provider": "fast", "api_key_env": "KEY_A"}]}, ENV)
    assert ENV["KEY_A"] not in repr(config)
    assert config.accounts[0].key.reveal() == ENV["KEY_A"]
    assert str(Secret("x")) == "Secret('****')"


def test_base_url_placeholders_are_filled_from_the_account_params():
    user = {"accounts": [{"provider": "cloudflare", "api_key_env": "KEY_A", "params": {"account_id": "abc"}}]}
    config = build_config([*PROVIDERS, CLOUDFLARE], user, ENV)
    assert config.accounts[0].account.base_url == "https://api.cloudflare.com/client/v4/accounts/abc/ai/v1"


def test_a_missing_placeholder_param_is_an_error():
    with pytest.raises(ConfigError, match="account_id"):
        build_config([*PROVIDERS, CLOUDFLARE], {"accounts": [{"provider": "cloudflare", "api_key_env": "KEY_A"}]}, ENV)


def test_user_providers_add_new_ones_and_override_fields_of_shipped_ones():
    user = {
        "providers": [
            {"id": "local-vllm", "base_url": "http://127.0.0.1:8001/v1", "auth": "none", "models": ["qwen"]},
            {"id": "fast", "speed": 1},
        ],
        "accounts": [{"provider": "local-vllm"}],
    }
    config = build_config(PROVIDERS, user, ENV)
    assert config.providers["local-vllm"].models[0].id == "qwen"
    assert config.accounts[0].key is None
    assert config.providers["fast"].speed == 1
    assert config.providers["fast"].models[0].id == "llama-8b"


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"acounts": []}, "unknown top-level keys"),
        ({"accounts": [{"provider": "nope", "api_key_env": "KEY_A"}]}, "unknown provider"),
        ({"accounts": [{"provider": "fast"}]}, "api_key_env"),
        ({"fallback_chains": {"c": [{"provider": "nope", "model": "m"}]}}, "unknown provider"),
        ({"fallback_chains": {"c": []}}, "non-empty"),
        ({"providers": [{"id": "x", "base_url": "http://h", "protocol": "smoke"}]}, "protocol"),
        ({"providers": [{"id": "x", "base_url": "http://h", "models": [{"id": "m", "quality": 9}]}]}, "quality"),
        (
            {"accounts": [{"provider": "fast", "alias": "a", "api_key_env": "KEY_A"}] * 2},
            "unique",
        ),
    ],
)
def test_malformed_configuration_is_reported_precisely(user, message):
    with pytest.raises(ConfigError, match=message):
        build_config(PROVIDERS, user, ENV)


def test_fallback_chains_keep_their_order():
    chains = {"coding": [{"provider": "smart", "model": "big-model"}, {"provider": "fast", "model": "llama-8b"}]}
    config = build_config(PROVIDERS, {"fallback_chains": chains}, ENV)
    assert [(s.provider, s.model) for s in config.fallback_chains["coding"]] == [
        ("smart", "big-model"),
        ("fast", "llama-8b"),
    ]
