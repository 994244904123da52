"""Wiring at start: which protocols the router speaks, and the warning naming providers it cannot route."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from llmagg.registry import registry_entries
from llmagg_router.adapters.config_keys import ConfigKeySource
from llmagg_router.backends import create_adapters, create_ports
from llmagg_router.domain.config import build_config
from llmagg_router.domain.resolver import Resolver
from llmagg_router.server import warn_of_unsupported_protocols
from llmagg_router.settings import RouterSettings

ALL = {"openai", "anthropic", "gemini", "cohere"}


def test_the_router_speaks_the_four_protocols_over_one_connection_pool():
    config = build_config(registry_entries(), {}, {})
    adapters = create_adapters(RouterSettings())
    assert set(adapters) == ALL
    assert len({id(adapter._http) for adapter in adapters.values()}) == 1
    keys = ConfigKeySource(config.accounts)
    assert warn_of_unsupported_protocols(config, adapters, keys) == {"nlp-cloud": "nlpcloud"}  # all else is routable


def test_a_shipped_provider_switched_to_its_native_protocol_by_the_users_config_is_routable_with_usage():
    native = {"id": "cohere", "protocol": "cohere", "base_url": "https://api.cohere.com/v2", "drop_params": []}
    accounts = [{"provider": "cohere", "api_key_env": "CO_KEY"}]
    config = build_config(registry_entries(), {"providers": [native], "accounts": accounts}, {"CO_KEY": "co-test-0000"})
    ports = create_ports(RouterSettings(), config, CollectorRegistry())
    cohere = Resolver(config, ports.keys, ports.health, ALL).routable_providers["cohere"]
    assert (cohere.protocol, cohere.base_url, cohere.drop_params) == (
        "cohere",
        "https://api.cohere.com/v2",
        frozenset(),
    )


def test_providers_whose_protocol_no_adapter_speaks_are_named_in_a_warning_at_start(caplog):
    accounts = [
        {"provider": "nlp-cloud", "alias": "nlp", "api_key_env": "NLP_KEY"},
        {"provider": "anthropic", "api_key_env": "NLP_KEY"},
    ]
    config = build_config(registry_entries(), {"accounts": accounts}, {"NLP_KEY": "sk-nlp-test-000000"})
    with caplog.at_level(logging.WARNING, logger="router"):
        unsupported = warn_of_unsupported_protocols(config, ALL, ConfigKeySource(config.accounts))
    assert unsupported == {"nlp-cloud": "nlpcloud"}
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "not routable, no adapter speaks their protocol yet: nlp-cloud (nlpcloud); the accounts of nlp-cloud go unused"
    )


def test_no_warning_when_every_protocol_is_spoken(caplog):
    config = build_config(registry_entries(), {}, {})
    with caplog.at_level(logging.WARNING, logger="router"):
        assert warn_of_unsupported_protocols(config, ALL | {"nlpcloud"}, ConfigKeySource(config.accounts)) == {}
    assert caplog.records == []
