"""The provider registry shared by every service: providers, models, limits, accounts."""

from llmagg.registry.accounts import Account, ConfiguredAccount, fill_placeholders, parse_accounts
from llmagg.registry.loader import SHIPPED_REGISTRY, load_registry, merge_providers, read_yaml, registry_entries
from llmagg.registry.schema import (
    AUTH_STYLES,
    MODEL_TYPES,
    MODELS_APIS,
    PROTOCOLS,
    TIERS,
    Model,
    Provider,
    RegistryError,
    parse_model,
    parse_provider,
)

__all__ = [
    "AUTH_STYLES",
    "MODELS_APIS",
    "MODEL_TYPES",
    "PROTOCOLS",
    "SHIPPED_REGISTRY",
    "TIERS",
    "Account",
    "ConfiguredAccount",
    "Model",
    "Provider",
    "RegistryError",
    "fill_placeholders",
    "load_registry",
    "merge_providers",
    "parse_accounts",
    "parse_model",
    "parse_provider",
    "read_yaml",
    "registry_entries",
]
